"""The cluster's periodic housekeeping: start recurring runs that came due, advance pipelines,
hand on locks whose leases lapsed (and, from database workers, reap attempts whose lease lapsed).

It runs once per `SFP_HOUSEKEEPING_INTERVAL_SECONDS` across the whole cluster, not in every
slot of every worker: each worker's supervisor calls `run_due()` a few times per interval; on
PostgreSQL the caller first takes a session advisory lock without waiting
(`pg_try_advisory_lock`), so two ticks never overlap, then claims the interval with a
conditional UPDATE of the tick's `last_run_at` (on the database's clock), so one tick runs per
interval even when ticks are short. On SQLite (the embedded default: one process) the
conditional UPDATE alone decides. Each step is idempotent, and one failing step does not stop
the others.
"""

import threading
from collections.abc import Callable, Iterable
from datetime import timedelta

import structlog
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.db.models import Q
from django.db.models.functions import Now

from apps.environments.services import locks
from apps.tasks import pipelines
from apps.tasks.models import HousekeepingRun
from apps.tasks.services import recurring_spawn_due

logger = structlog.get_logger(__name__)

TICK_NAME = "tick"
# A constant key of the cluster's housekeeping lock (pg advisory locks are one 64-bit space).
ADVISORY_LOCK_KEY = 0x5F9_7A5C


def _expire_locks() -> None:
    locks.locks_expire_due()  # lapsed leases hand their locks on without anyone polling


STEPS: tuple[Callable[[], object], ...] = (
    recurring_spawn_due,
    pipelines.advance_all,
    _expire_locks,
)


def tick(extra_steps: Iterable[Callable[[], object]] = ()) -> None:
    """Run every step once (each on its own; a failing step is logged, the rest still run)."""
    for step in (*STEPS, *extra_steps):
        try:
            step()
        except Exception:
            logger.exception("housekeeping.step_failed", step=getattr(step, "__name__", step))
            close_old_connections()


def _claim_interval(interval: float) -> bool:
    """Take this interval's turn: True for exactly one caller per interval."""
    due = Q(last_run_at__lte=Now() - timedelta(seconds=interval))
    if HousekeepingRun.objects.filter(name=TICK_NAME).filter(due).update(last_run_at=Now()):
        return True
    if HousekeepingRun.objects.filter(name=TICK_NAME).exists():
        return False
    _, created = HousekeepingRun.objects.get_or_create(
        name=TICK_NAME, defaults={"last_run_at": Now()}
    )
    return created


def run_due(
    *, interval: float | None = None, extra_steps: Iterable[Callable[[], object]] = ()
) -> bool:
    """Run the tick if no other process runs it now and it has not run this interval.

    Returns whether this call ran it. Database errors propagate (the caller retries later)."""
    interval = settings.SFP_HOUSEKEEPING_INTERVAL_SECONDS if interval is None else interval
    if connection.vendor != "postgresql":
        if not _claim_interval(interval):
            return False
        tick(extra_steps)
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        if not cursor.fetchone()[0]:
            return False
    try:
        if not _claim_interval(interval):
            return False
        tick(extra_steps)
        return True
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
        except DatabaseError:
            connection.close()  # a lost session holds no lock any more


def run_in_background(
    stop: threading.Event,
    interval: float | None = None,
    extra_steps: Iterable[Callable[[], object]] = (),
) -> threading.Thread:
    """For workers whose loop is not ours (Hatchet): offer to run the tick (with the backend's
    `extra_steps`) until `stop`."""
    interval = settings.SFP_HOUSEKEEPING_INTERVAL_SECONDS if interval is None else interval

    def loop() -> None:
        try:
            while not stop.wait(max(0.05, interval / 4)):
                close_old_connections()
                try:
                    run_due(interval=interval, extra_steps=extra_steps)
                except Exception:  # noqa: BLE001 - the database may be away: try again later
                    logger.warning("housekeeping_failed")
                    connection.close()
        finally:
            connection.close()

    thread = threading.Thread(target=loop, name="sfp-housekeeping", daemon=True)
    thread.start()
    return thread
