"""Task backend behind Django's `django.tasks` API, and the worker's knobs.

The database backend (`apps.tasks.backends.database`) runs on the project's own database; in
the embedded default a worker inside the server process consumes it (`SFP_EMBEDDED_WORKER`), so
no other process is needed. The Hatchet backend for production is configured here when it lands.
"""

from sfpserver.env import EMBEDDED, env

TASK_QUEUES = ["standard", "long-running"]

TASKS = {
    "default": {
        "BACKEND": "apps.tasks.backends.database.DatabaseBackend",
        "QUEUES": TASK_QUEUES,
    }
}

# The sfp CLI: a path, or a command with arguments (e.g. "node /opt/sfp/bin/run").
SFP_CLI_PATH = env.str("SFP_CLI_PATH", default="sfp")
# The Salesforce CLI, which authorises each task's orgs (`sf org login sfdx-url`) before sfp runs.
SFP_SF_CLI_PATH = env.str("SFP_SF_CLI_PATH", default="sf")
# git, for the repository checkout every sfp command runs in.
SFP_GIT_PATH = env.str("SFP_GIT_PATH", default="git")
SFP_CLI_TERM_GRACE_SECONDS = env.float("SFP_CLI_TERM_GRACE_SECONDS", default=10.0)
SFP_WORKER_POLL_INTERVAL = env.float("SFP_WORKER_POLL_INTERVAL", default=0.2)
SFP_WORKER_LEASE_SECONDS = env.float("SFP_WORKER_LEASE_SECONDS", default=30.0)
# Housekeeping (recurring runs, pipelines, lapsed locks and leases) runs once per interval across
# the cluster, in whichever worker takes its advisory lock first.
SFP_HOUSEKEEPING_INTERVAL_SECONDS = env.float("SFP_HOUSEKEEPING_INTERVAL_SECONDS", default=1.0)
# Where attempts get their workspaces (default: the system's temporary directory). Workers sweep
# workspaces of dead attempts from it at start.
SFP_WORKSPACE_ROOT = env.str("SFP_WORKSPACE_ROOT", default="")

SFP_EMBEDDED_WORKER = env.bool("SFP_EMBEDDED_WORKER", default=EMBEDDED)
SFP_EMBEDDED_WORKER_SLOTS = env.int("SFP_EMBEDDED_WORKER_SLOTS", default=2)
