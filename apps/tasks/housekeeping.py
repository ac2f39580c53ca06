"""The periodic tick every worker runs, whichever backend: start recurring runs that came due,
advance pipelines, and hand on locks whose leases lapsed. Each step is idempotent and safe to run
from many processes at once."""

import threading

import structlog
from django.db import close_old_connections, connection

from apps.environments.services import locks
from apps.tasks import pipelines
from apps.tasks.services import recurring_spawn_due

logger = structlog.get_logger(__name__)

TICK_SECONDS = 0.5


def tick() -> None:
    recurring_spawn_due()
    pipelines.advance_all()
    locks.locks_expire_due()  # lapsed leases hand their locks on without anyone polling


def run_in_background(stop: threading.Event, interval: float = TICK_SECONDS) -> threading.Thread:
    """For workers whose loop is not ours (Hatchet): tick in a daemon thread until `stop`."""

    def loop() -> None:
        try:
            while not stop.wait(interval):
                close_old_connections()
                try:
                    tick()
                except Exception:
                    logger.exception("housekeeping_failed")
        finally:
            connection.close()

    thread = threading.Thread(target=loop, name="sfp-housekeeping", daemon=True)
    thread.start()
    return thread
