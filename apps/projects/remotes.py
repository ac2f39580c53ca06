"""Git remote URLs: the HTTPS form a worker clones from, whatever form the project was
registered with (`https://…`, `git@host:path`, `ssh://git@host/path`)."""

import re

_SCP_LIKE = re.compile(r"^(?:[\w.-]+@)?(?P<host>[\w.-]+):(?P<path>(?!//).+)$")
_SSH = re.compile(r"^ssh://(?:[\w.-]+@)?(?P<host>[\w.-]+)(?::\d+)?/(?P<path>.+)$")
# Azure DevOps: git@ssh.dev.azure.com:v3/{organization}/{project}/{repository}
_AZURE_SSH_PATH = re.compile(r"^v3/(?P<org>[^/]+)/(?P<project>[^/]+)/(?P<repo>[^/]+?)/?$")


def https_clone_url(remote_url: str) -> str:
    """The URL to clone over HTTP(S). HTTP(S) URLs are kept (user info removed: credentials
    come from the project's integration, never from the URL)."""
    remote = remote_url.strip()
    if remote.startswith(("https://", "http://")):
        scheme, rest = remote.split("://", 1)
        host_and_path = rest.split("@", 1)[-1] if "@" in rest.split("/", 1)[0] else rest
        return f"{scheme}://{host_and_path}"
    match = _SSH.match(remote) or _SCP_LIKE.match(remote)
    if match is None:
        return remote
    host, path = match["host"], match["path"].lstrip("/")
    if host == "ssh.dev.azure.com" and (azure := _AZURE_SSH_PATH.match(path)):
        return f"https://dev.azure.com/{azure['org']}/{azure['project']}/_git/{azure['repo']}"
    return f"https://{host}/{path}"
