"""Task backend behind Django's `django.tasks` API.

The database backend (django-tasks-db) runs on the project's own database; in the embedded
default a worker thread inside the server process consumes it (`SFP_EMBEDDED_WORKER`), so no
other process is needed. The Hatchet backend for production is configured here by the tasks
capability.
"""

from sfpserver.env import EMBEDDED, env

TASK_QUEUES = ["standard", "long-running"]

TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": TASK_QUEUES,
    }
}

SFP_EMBEDDED_WORKER = env.bool("SFP_EMBEDDED_WORKER", default=EMBEDDED)
SFP_EMBEDDED_WORKER_INTERVAL = env.float("SFP_EMBEDDED_WORKER_INTERVAL", default=0.2)
