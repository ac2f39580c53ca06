"""The task worker that runs inside the server process in the embedded default.

With the in-memory channel layer only consumers in the same process receive events, so in the
embedded default the worker must live in the server process: a daemon thread consuming the
database task backend (django-tasks-db's own worker loop). Production runs separate
`manage.py runworker` processes instead.
"""

import os
import threading

import structlog
from django.conf import settings

logger = structlog.get_logger(__name__)

_started = threading.Event()


def start_embedded_worker() -> threading.Thread | None:
    """Start the in-process worker once per process; later calls are no-ops."""
    if _started.is_set():
        return None
    _started.set()

    from django_tasks_db.management.commands.db_worker import Worker

    worker = Worker(
        queue_names=list(settings.TASK_QUEUES),
        excluded_queue_names=[],
        interval=settings.SFP_EMBEDDED_WORKER_INTERVAL,
        batch=False,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id=f"embedded-{os.getpid()}",
    )
    thread = threading.Thread(target=worker.run, name="sfp-embedded-worker", daemon=True)
    thread.start()
    logger.info("embedded_worker_started", queues=settings.TASK_QUEUES)
    return thread
