"""`manage.py runworker --pool standard|long-running [--slots N]`: run a worker for one pool.

It serves the configured backend (the database backend here), logs which task types it took on,
and on SIGTERM or Ctrl-C drains: it stops claiming work and lets in-flight attempts finish for
up to `--drain-seconds` before exiting (a later attempt of anything cut short is retried by
another worker once its lease expires).
"""

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.tasks.models import Pool
from apps.tasks.tasks import DECLARED
from apps.tasks.worker import Worker


class Command(BaseCommand):
    help = "Run a task worker for one pool (standard or long-running)."

    def add_arguments(self, parser):
        parser.add_argument("--pool", choices=Pool.values, default=Pool.STANDARD)
        parser.add_argument("--slots", type=int, default=2, help="Attempts run at the same time.")
        parser.add_argument("--worker-id", default=None)
        parser.add_argument(
            "--drain-seconds",
            type=float,
            default=settings.SFP_CLI_TERM_GRACE_SECONDS * 6,
            help="How long in-flight work may take to finish after SIGTERM.",
        )

    def handle(
        self, *args, pool: str, slots: int, worker_id: str | None, drain_seconds: float, **options
    ):
        worker = Worker(pools=[pool], slots=slots, worker_id=worker_id)
        types = sorted(name for name, declared in DECLARED.items() if declared.pool == pool)
        self.stdout.write(
            f"Worker {worker.worker_id}: pool {pool}, {slots} slot(s), "
            f"task types: {', '.join(types)}"
        )
        self.stdout.flush()
        stop = threading.Event()

        def request_stop(signum, frame):
            self.stdout.write(
                f"Draining: no new work; waiting up to {drain_seconds:.0f} s "
                f"for {len(worker.in_flight)} in-flight task(s)"
            )
            self.stdout.flush()
            worker.stop()
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        worker.start()
        stop.wait()
        finished = worker.join(timeout=drain_seconds)
        self.stdout.write(
            "Stopped cleanly."
            if finished
            else f"Stopped with {len(worker.in_flight)} task(s) still running."
        )
