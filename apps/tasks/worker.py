"""The database backend's worker: claims executions of its pools, runs them with a renewed lease,
and retries or fails attempts whose worker died.

Each slot is a thread that claims one execution at a time. While an attempt runs, a heartbeat
renews its lease and turns a cancellation request into the attempt's cancel flag. Every worker
also reaps expired leases, so a SIGKILLed worker's attempt is retried by the others. `stop()`
drains: no new claims, in-flight attempts finish (the caller decides how long to wait).
"""

import functools
import os
import socket
import threading
import time

import structlog
from django.conf import settings
from django.db import close_old_connections, connection

from apps.environments.selectors.locks import holds_lock_now
from apps.tasks import housekeeping, lifecycle, pipelines
from apps.tasks.attempts import claim_environment_lock, release_environment_lock, run_attempt
from apps.tasks.execution import AttemptContext
from apps.tasks.models import DispatchState, TaskExecution

NOTIFY_CHANNEL = "sfp_tasks"
RECURRENCE_CHECK_SECONDS = 0.5

logger = structlog.get_logger("sfpserver.worker")


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Worker:
    def __init__(
        self,
        *,
        pools: list[str],
        slots: int = 1,
        worker_id: str | None = None,
        poll_interval: float | None = None,
        lease_seconds: float | None = None,
    ):
        self.pools = pools
        self.slots = slots
        self.worker_id = worker_id or default_worker_id()
        self.poll_interval = poll_interval or settings.SFP_WORKER_POLL_INTERVAL
        self.lease_seconds = lease_seconds or settings.SFP_WORKER_LEASE_SECONDS
        self.stopping = threading.Event()
        self.wake = threading.Event()  # set by LISTEN/NOTIFY when work is enqueued (PostgreSQL)
        self.in_flight: set[str] = set()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    # --- lifecycle ---

    def start(self) -> None:
        if connection.vendor == "postgresql":
            listener = threading.Thread(target=self._listen, name="sfp-worker-listen", daemon=True)
            listener.start()
        for slot in range(self.slots):
            thread = threading.Thread(
                target=self._slot_loop, name=f"sfp-worker-slot-{slot}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        logger.info("worker.started", worker_id=self.worker_id, pools=self.pools, slots=self.slots)

    def stop(self) -> None:
        """Stop claiming new work; attempts already running carry on."""
        self.stopping.set()
        self.wake.set()

    def join(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
        return not any(thread.is_alive() for thread in self._threads)

    # --- the loop ---

    def _slot_loop(self) -> None:
        last_reap = last_recurrence = 0.0
        try:
            while not self.stopping.is_set():
                close_old_connections()
                if time.monotonic() - last_reap > self.lease_seconds / 2:
                    lifecycle.reap_expired_leases()
                    last_reap = time.monotonic()
                if time.monotonic() - last_recurrence > RECURRENCE_CHECK_SECONDS:
                    housekeeping.tick()
                    last_recurrence = time.monotonic()
                if DispatchState.is_paused():
                    self.stopping.wait(self.poll_interval)
                    continue
                execution = lifecycle.claim_next(
                    pools=self.pools, worker_id=self.worker_id, lease_seconds=self.lease_seconds
                )
                if execution is None:
                    # Woken at once by a NOTIFY on PostgreSQL; polling covers everything else
                    # (scheduled runs coming due, retries after their backoff, SQLite).
                    self.wake.wait(self.poll_interval)
                    self.wake.clear()
                    continue
                self._run(execution)
        except Exception:
            logger.exception("worker.slot_crashed", worker_id=self.worker_id)
            raise
        finally:
            connection.close()

    def _run(self, execution: TaskExecution) -> None:
        held_lock = self._acquire_environment_lock(execution)
        if held_lock is False:
            return  # it waits for the lock: back in the queue, its status says why
        with self._lock:
            self.in_flight.add(execution.operation_id)
        status = "failed"
        try:
            outcome = run_attempt(
                execution,
                worker_id=self.worker_id,
                watch=functools.partial(self._heartbeat, execution.operation_id),
            )
            status = outcome.status
        finally:
            release_environment_lock(execution, held_lock, status)
            with self._lock:
                self.in_flight.discard(execution.operation_id)
            close_old_connections()
        if execution.parent_id:
            pipelines.advance(execution.parent_id)  # the next steps start now, not at the tick

    def _acquire_environment_lock(self, execution: TaskExecution):
        """(repository, resource, ticket) when held, None when none is needed, False when the
        execution must wait: it goes back to the queue with the reason as its current step."""
        held = claim_environment_lock(execution)
        if isinstance(held, str):
            lifecycle.wait_for_lock(execution.operation_id, reason=held)
            if holds_lock_now(execution.operation_id):  # handed over before it was parked
                lifecycle.wake_parked(execution.operation_id)
            return False
        return held

    def _listen(self) -> None:
        """LISTEN for enqueue notifications on a connection of its own and wake idle slots."""
        import psycopg

        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        while not self.stopping.is_set():
            try:
                with psycopg.connect(**params, autocommit=True) as listening:
                    listening.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    while not self.stopping.is_set():
                        for _ in listening.notifies(timeout=1.0, stop_after=1):
                            self.wake.set()
            except psycopg.Error:
                logger.warning("worker.listen_failed", worker_id=self.worker_id)
                self.stopping.wait(5)

    def _heartbeat(self, operation_id: str, context: AttemptContext, stop: threading.Event) -> None:
        try:
            while not stop.wait(self.lease_seconds / 3):
                lease = lifecycle.renew_lease(
                    operation_id=operation_id,
                    worker_id=self.worker_id,
                    lease_seconds=self.lease_seconds,
                )
                if lease.cancel_requested or not lease.owned:
                    context.cancel_event.set()
        finally:
            connection.close()
