"""The task worker that runs inside the server process in the embedded default.

With the in-memory channel layer only consumers in the same process receive events, so in the
embedded default the worker lives in the server process: the database backend's `Worker`, with
`SFP_EMBEDDED_WORKER_SLOTS` slot threads serving every pool. Production runs separate
`manage.py runworker` processes instead.
"""

import threading

from django.conf import settings

from apps.tasks.worker import Worker, default_worker_id

_started = threading.Lock()
_worker: Worker | None = None


def start_embedded_worker() -> Worker | None:
    """Start the in-process worker once per process; later calls return None."""
    global _worker
    with _started:
        if _worker is not None:
            return None
        _worker = Worker(
            pools=list(settings.TASK_QUEUES),
            slots=settings.SFP_EMBEDDED_WORKER_SLOTS,
            worker_id=f"embedded-{default_worker_id()}",
        )
        _worker.start()
        return _worker
