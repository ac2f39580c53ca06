"""`manage.py runworker --pool standard|long-running [--slots N]`: run a worker for one pool.

It serves the configured backend and logs which task types it took on. On the database backend,
SIGTERM or Ctrl-C drains: it stops claiming work and lets in-flight attempts finish for up to
`--drain-seconds` before exiting (a later attempt of anything cut short is retried by another
worker once its lease expires). On the Hatchet backend it starts a hatchet-sdk worker labelled
with the pool and registering only that pool's task types; the SDK drains by itself on SIGTERM
(it pauses the worker over the engine's REST API, waits for in-flight tasks, then closes its
stream), so `--drain-seconds` does not apply: give the process a stop timeout at least as long
as the longest task of the pool.

The worker process makes itself a child subreaper, so CLI descendants orphaned while it lives
re-parent to it and are killed and reaped with their attempt; each CLI also dies with the worker
(see `apps.tasks.cli_guard`). On start it sweeps workspaces left by dead attempts.

On start it reports the tools tasks run with (git, the sf CLI, sfp: path and version) and warns
about any it cannot find; `--check-toolchain` only reports them and exits 1 if one is missing
(a preflight for worker images and nodes).
"""

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.tasks import task_backends

from apps.tasks import housekeeping
from apps.tasks.catalogue import OPERATIONS
from apps.tasks.models import Pool
from apps.tasks.runner import become_subreaper
from apps.tasks.toolchain import inspect_toolchain
from apps.tasks.worker import Worker, default_worker_id


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
        parser.add_argument(
            "--check-toolchain",
            action="store_true",
            help="Report git, the sf CLI and sfp (path, version) and exit; 1 if one is missing.",
        )

    def _report_toolchain(self) -> bool:
        tools = inspect_toolchain()
        for tool in tools:
            line = f"Toolchain: {tool.describe()}"
            self.stdout.write(line) if tool.found else self.stderr.write(line)
        self.stdout.flush()
        return all(tool.found for tool in tools)

    def _announce(self, worker_id: str, pool: str, slots: int) -> None:
        types = sorted(op.name for op in OPERATIONS.values() if op.pool == pool)
        self.stdout.write(
            f"Worker {worker_id}: pool {pool}, {slots} slot(s), task types: {', '.join(types)}"
        )
        self.stdout.flush()

    def handle(
        self,
        *args,
        pool: str,
        slots: int,
        worker_id: str | None,
        drain_seconds: float,
        check_toolchain: bool,
        **options,
    ):
        complete = self._report_toolchain()
        if check_toolchain:
            if not complete:
                raise CommandError("A tool that tasks run with is missing (see above).")
            return
        become_subreaper()
        backend = task_backends["default"]
        if callable(getattr(backend, "worker_for_pool", None)):
            return self._run_hatchet(backend, pool, slots, worker_id or default_worker_id())
        worker = Worker(pools=[pool], slots=slots, worker_id=worker_id)
        self._announce(worker.worker_id, pool, slots)
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

    def _run_hatchet(self, backend, pool: str, slots: int, worker_id: str) -> None:
        from apps.tasks.backends.hatchet import in_flight, resume_due_parked

        # Building the worker installs the SDK's own SIGTERM/SIGINT handlers (graceful drain).
        hatchet_worker = backend.worker_for_pool(pool, slots, worker_id)
        self._announce(worker_id, pool, slots)

        def announce_then(sdk_handler):
            def handler(signum, frame):
                self.stdout.write(
                    "Draining: no new work; the Hatchet SDK pauses this worker and waits "
                    f"for {in_flight()} in-flight task(s)"
                )
                self.stdout.flush()
                if callable(sdk_handler):
                    sdk_handler(signum, frame)

            return handler

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, announce_then(signal.getsignal(sig)))
        code = 0
        stop_housekeeping = threading.Event()
        housekeeping.run_in_background(stop_housekeeping, extra_steps=(resume_due_parked,))
        try:
            hatchet_worker.start()  # blocks until the SDK has drained and stopped
        except SystemExit as exit_:
            code = exit_.code or 0
        finally:
            stop_housekeeping.set()
        self.stdout.write("Stopped cleanly." if code == 0 else f"Stopped (exit code {code}).")
        self.stdout.flush()
        if code:
            raise SystemExit(code)
