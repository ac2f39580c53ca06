"""gunicorn settings for the API workers (ADR 0005): gthread workers, so a slow request (a lock
request that waits) holds a thread rather than a whole worker, and Prometheus metrics summed
over all workers when PROMETHEUS_MULTIPROC_DIR is set (each worker writes its own files there;
`/metrics` reads them all, whichever worker answers)."""

import os
import shutil

from prometheus_client import multiprocess

bind = os.environ.get("SFP_API_BIND", "0.0.0.0:8001")
worker_class = "gthread"
workers = int(os.environ.get("SFP_API_WORKERS", "4"))
threads = int(os.environ.get("SFP_API_THREADS", "8"))
timeout = 120
accesslog = None  # Django logs every request as JSON (request id, actor, duration)


def on_starting(server):
    """Start from an empty metrics directory: files of an earlier run would be summed in."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
