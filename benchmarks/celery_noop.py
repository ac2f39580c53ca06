"""The Celery 5 + Redis side of the `task_queue` benchmark: a noop task that reports when it
started (enqueue→start) and that it ran (burst completion), both into Redis lists.

Imported by `celery -A benchmarks.celery_noop worker` in the benchmark's worker processes and by
the benchmark itself to send tasks; the broker is `$BENCH_CELERY_BROKER_URL`.
"""

import os
import time

import redis
from celery import Celery

BROKER_URL = os.environ.get("BENCH_CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
STARTED_KEY = "bench:celery:started"
DONE_KEY = "bench:celery:done"

app = Celery("bench", broker=BROKER_URL)
app.conf.update(task_ignore_result=True, worker_hijack_root_logger=False)
_reports = redis.Redis.from_url(BROKER_URL)


@app.task(name="bench.noop")
def noop(sent_at: float, report_start: bool) -> None:
    """Do nothing; say when it started (epoch seconds, same clock as the sender) or that it ran."""
    if report_start:
        _reports.rpush(STARTED_KEY, time.time() - sent_at)
    else:
        _reports.rpush(DONE_KEY, 1)
