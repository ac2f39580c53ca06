"""Where the outside services live: GitHub, Azure DevOps / Azure AD, Salesforce.

The defaults are the public clouds; GitHub Enterprise or a sovereign cloud changes them here (or
per integration in its `config`). `SFP_SALESFORCE_INSECURE_HOSTS` lists `host:port` pairs that
may be reached over plain http — only ever local test doubles; real instances are https.
"""

from sfpserver.env import env

SFP_GITHUB_API_URL = env.str("SFP_GITHUB_API_URL", default="https://api.github.com")
SFP_AZURE_DEVOPS_URL = env.str("SFP_AZURE_DEVOPS_URL", default="https://dev.azure.com")
SFP_AZURE_AD_LOGIN_URL = env.str(
    "SFP_AZURE_AD_LOGIN_URL", default="https://login.microsoftonline.com"
)
SFP_SALESFORCE_INSECURE_HOSTS = env.list("SFP_SALESFORCE_INSECURE_HOSTS", default=[])
