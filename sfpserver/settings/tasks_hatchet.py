"""Hatchet task backend settings: off unless `HATCHET_CLIENT_TOKEN` is set.

Reads the environment variables hatchet-sdk itself documents (`HATCHET_CLIENT_TOKEN`,
`HATCHET_CLIENT_HOST_PORT`, `HATCHET_CLIENT_SERVER_URL`, `HATCHET_CLIENT_TLS_STRATEGY`,
`HATCHET_CLIENT_TLS_ROOT_CA_FILE`, `HATCHET_CLIENT_TLS_SERVER_NAME`, `HATCHET_CLIENT_NAMESPACE`)
into `SFP_HATCHET_*` settings for `apps.tasks.backends.hatchet`. With a token, the default
django.tasks backend becomes the Hatchet backend (same queues as the database backend); host and
server URL default to the addresses inside the token, TLS to `tls`. Imported at the end of
`sfpserver.settings.base`, after `sfpserver.settings.tasks`, so it overrides `TASKS`.
"""

from sfpserver.env import env

TASK_QUEUES = ["standard", "long-running"]

SFP_HATCHET_TOKEN = env.str("HATCHET_CLIENT_TOKEN", default="")
SFP_HATCHET_HOST_PORT = env.str("HATCHET_CLIENT_HOST_PORT", default="")
SFP_HATCHET_SERVER_URL = env.str("HATCHET_CLIENT_SERVER_URL", default="")
SFP_HATCHET_TLS_STRATEGY = env.str("HATCHET_CLIENT_TLS_STRATEGY", default="tls")
SFP_HATCHET_TLS_ROOT_CA_FILE = env.str("HATCHET_CLIENT_TLS_ROOT_CA_FILE", default="")
SFP_HATCHET_TLS_SERVER_NAME = env.str("HATCHET_CLIENT_TLS_SERVER_NAME", default="")
SFP_HATCHET_NAMESPACE = env.str("HATCHET_CLIENT_NAMESPACE", default="")
SFP_HATCHET_CANCEL_POLL_SECONDS = env.float("SFP_HATCHET_CANCEL_POLL_SECONDS", default=1.0)

if SFP_HATCHET_TOKEN:
    TASKS = {
        "default": {
            "BACKEND": "apps.tasks.backends.hatchet.HatchetBackend",
            "QUEUES": TASK_QUEUES,
        }
    }
