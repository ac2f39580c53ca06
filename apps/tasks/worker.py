"""The database backend's worker: claims executions of its pools, runs them with a renewed lease,
and retries or fails attempts whose worker died.

Each slot is a thread that claims one execution at a time. While an attempt runs, a heartbeat
renews its lease and turns a cancellation request into the attempt's cancel flag. `stop()`
drains: no new claims, in-flight attempts finish (the caller decides how long to wait).

Outages are weather: a slot that dies for any reason (a database restart mid-claim, a bug) is
logged (`worker.slot_crashed`), counted and restarted by the worker's supervisor thread after
`SLOT_RESTART_SECONDS`, on a fresh database connection. The supervisor also writes the worker's
heartbeat row (`WorkerHeartbeat`: slots alive and restarted, what it cannot reach) that `/health`
and `/metrics` read, and runs the cluster's housekeeping when it is due (`housekeeping.run_due`:
one worker per interval, under an advisory lock; it also reaps lapsed leases).

The fence: an attempt must be dead before its lease can lapse. The heartbeat moves the
attempt's `fence_at` to (time the renewal was sent + 2/3 of the lease) after each successful
renewal; the runner SIGKILLs the CLI's process tree the moment `fence_at` passes (the database
unreachable, the heartbeat stuck) or the lease is found to belong to someone else. The reaper
retries an execution only once its lease (database clock) has lapsed, so a retry never starts
while the previous attempt's CLI may still run. At start the worker sweeps workspaces of dead
attempts (`runner.sweep_dead_workspaces`).
"""

import functools
import os
import socket
import threading
import time

import structlog
from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models.functions import Now
from django.utils import timezone

from apps.core.events import channel_layer_state
from apps.environments.selectors.locks import holds_lock_now
from apps.tasks import housekeeping, lifecycle, pipelines, runner
from apps.tasks.attempts import claim_environment_lock, release_environment_lock, run_attempt
from apps.tasks.execution import AttemptContext
from apps.tasks.metrics import ATTEMPT_DURATION, RETRIES, SLOT_CRASHES, SLOT_RESTARTS
from apps.tasks.models import DispatchState, TaskExecution, WorkerHeartbeat

NOTIFY_CHANNEL = "sfp_tasks"
SUPERVISE_SECONDS = 0.25
HEARTBEAT_SECONDS = 2.0
SLOT_RESTART_SECONDS = 1.0
# The CLI must be dead this far before the lease could lapse (renewals every lease/3).
FENCE_FRACTION = 2 / 3

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
        self._threads: list[threading.Thread | None] = []
        self._lock = threading.Lock()
        self._crashed_at: dict[int, float] = {}
        self._claimed_at: dict[str, float] = {}
        self.slot_restarts = 0
        self.started_at = timezone.now()
        self.components = {"database": "up", "channelLayer": "up"}

    # --- lifecycle ---

    def start(self) -> None:
        runner.sweep_dead_workspaces()
        if connection.vendor == "postgresql":
            listener = threading.Thread(target=self._listen, name="sfp-worker-listen", daemon=True)
            listener.start()
        self._threads = [self._start_slot(slot) for slot in range(self.slots)]
        supervisor = threading.Thread(target=self._supervise, name="sfp-worker-supervisor")
        supervisor.daemon = True
        supervisor.start()
        logger.info("worker.started", worker_id=self.worker_id, pools=self.pools, slots=self.slots)

    def _start_slot(self, slot: int) -> threading.Thread:
        thread = threading.Thread(
            target=self._slot_loop, args=(slot,), name=f"sfp-worker-slot-{slot}", daemon=True
        )
        thread.start()
        return thread

    def stop(self) -> None:
        """Stop claiming new work; attempts already running carry on."""
        self.stopping.set()
        self.wake.set()

    def join(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in list(self._threads):
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
        return not any(thread.is_alive() for thread in self._threads)

    # --- supervision ---

    def slots_alive(self) -> int:
        return sum(1 for thread in self._threads if thread.is_alive())

    def _supervise(self) -> None:
        """Restart dead slots, write the heartbeat row, run housekeeping when due."""
        last_heartbeat = last_offer = 0.0
        offer_every = max(SUPERVISE_SECONDS, settings.SFP_HOUSEKEEPING_INTERVAL_SECONDS / 2)
        while not self.stopping.wait(SUPERVISE_SECONDS):
            self._restart_dead_slots()
            try:
                close_old_connections()
                if time.monotonic() - last_offer >= offer_every:
                    last_offer = time.monotonic()
                    housekeeping.run_due(extra_steps=(lifecycle.reap_expired_leases,))
                if time.monotonic() - last_heartbeat >= HEARTBEAT_SECONDS:
                    self._write_heartbeat()
                    last_heartbeat = time.monotonic()
                self.components["database"] = "up"
            except Exception:  # noqa: BLE001 - the supervisor outlives every outage
                if self.components["database"] == "up":
                    logger.warning("worker.database_unreachable", worker_id=self.worker_id)
                self.components["database"] = "down"
                connection.close()
        connection.close()

    def _restart_dead_slots(self) -> None:
        for slot, thread in enumerate(self._threads):
            if thread.is_alive() or self.stopping.is_set():
                continue
            crashed_at = self._crashed_at.setdefault(slot, time.monotonic())
            if time.monotonic() - crashed_at < SLOT_RESTART_SECONDS:
                continue
            del self._crashed_at[slot]
            self._threads[slot] = self._start_slot(slot)
            self.slot_restarts += 1
            SLOT_RESTARTS.inc()
            logger.warning(
                "worker.slot_restarted",
                worker_id=self.worker_id,
                slot=slot,
                restarts=self.slot_restarts,
            )

    def _write_heartbeat(self) -> None:
        self.components["channelLayer"] = channel_layer_state()
        WorkerHeartbeat.objects.update_or_create(
            worker_id=self.worker_id,
            defaults={
                "pools": self.pools,
                "slots": self.slots,
                "slots_alive": self.slots_alive(),
                "slots_busy": len(self.in_flight),
                "slot_restarts": self.slot_restarts,
                "components": dict(self.components),
                "started_at": self.started_at,
                "seen_at": Now(),
            },
        )

    # --- the loop ---

    def _slot_loop(self, slot: int = 0) -> None:
        try:
            while not self.stopping.is_set():
                close_old_connections()
                if DispatchState.is_paused():
                    self.stopping.wait(self.poll_interval)
                    continue
                sent = time.monotonic()  # the claim's lease runs from no earlier than this
                execution = lifecycle.claim_next(
                    pools=self.pools, worker_id=self.worker_id, lease_seconds=self.lease_seconds
                )
                if execution is not None:
                    self._claimed_at[execution.operation_id] = sent
                if execution is None:
                    # Woken at once by a NOTIFY on PostgreSQL; polling covers everything else
                    # (scheduled runs coming due, retries after their backoff, SQLite).
                    self.wake.wait(self.poll_interval)
                    self.wake.clear()
                    continue
                self._run(execution)
        except Exception:
            SLOT_CRASHES.inc()
            logger.exception("worker.slot_crashed", worker_id=self.worker_id, slot=slot)
        finally:
            connection.close()

    def _run(self, execution: TaskExecution) -> None:
        held_lock = self._acquire_environment_lock(execution)
        if held_lock is False:
            return  # it waits for the lock: back in the queue, its status says why
        with self._lock:
            self.in_flight.add(execution.operation_id)
        status = "failed"
        began = time.monotonic()
        try:
            outcome = run_attempt(
                execution,
                worker_id=self.worker_id,
                watch=functools.partial(self._heartbeat, execution),
            )
            status = outcome.status
        finally:
            ATTEMPT_DURATION.labels(execution.type, status or "fenced").observe(
                time.monotonic() - began
            )
            if status == "pending":
                RETRIES.labels(execution.type).inc()
            if status:  # "" when the attempt was fenced out: the lock is its successor's now
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

    def _heartbeat(
        self, execution: TaskExecution, context: AttemptContext, stop: threading.Event
    ) -> None:
        """Renew the attempt's lease every lease/3 s and keep its fence ahead of the lapse; a
        lost lease stops the CLI at once, a cancellation request politely."""
        fence_after = self.lease_seconds * FENCE_FRACTION
        context.fence_at = self._claimed_at.pop(execution.operation_id, time.monotonic()) + (
            fence_after
        )
        try:
            while not stop.wait(self.lease_seconds / 3):
                sent = time.monotonic()
                try:
                    lease = lifecycle.renew_lease(
                        operation_id=execution.operation_id,
                        worker_id=self.worker_id,
                        lease_seconds=self.lease_seconds,
                        attempt=execution.attempts,
                    )
                except Exception:  # noqa: BLE001 - the fence decides; keep trying until it does
                    logger.warning(
                        "worker.lease_renewal_failed",
                        worker_id=self.worker_id,
                        operation_id=execution.operation_id,
                    )
                    connection.close()
                    continue
                if not lease.owned:
                    context.fence_at = 0.0  # someone else's attempt now: kill the CLI
                    logger.warning(
                        "worker.lease_lost",
                        worker_id=self.worker_id,
                        operation_id=execution.operation_id,
                    )
                    return
                context.fence_at = sent + fence_after
                if lease.cancel_requested:
                    context.cancel_event.set()
        finally:
            connection.close()
