"""Housekeeping runs once per interval across the cluster: many callers (threads with their own
PostgreSQL sessions, as workers are) offering the tick every 50 ms run it about once per
interval and never two at a time; one failing step does not stop the others."""

import itertools
import threading
import time

import pytest
from django.db import connection

from apps.tasks import housekeeping

pytestmark = pytest.mark.django_db(transaction=True)


def test_one_tick_per_interval_across_concurrent_callers():
    runs, running, most_at_once = [], [0], [0]
    guard = threading.Lock()

    def step():
        with guard:
            running[0] += 1
            most_at_once[0] = max(most_at_once[0], running[0])
            runs.append(time.monotonic())
        time.sleep(0.05)
        with guard:
            running[0] -= 1

    stop = threading.Event()

    def caller():
        try:
            while not stop.wait(0.05):
                housekeeping.run_due(interval=0.5, extra_steps=(step,))
        finally:
            connection.close()

    callers = [threading.Thread(target=caller) for _ in range(6)]
    started = time.monotonic()
    for thread in callers:
        thread.start()
    time.sleep(3.0)
    stop.set()
    for thread in callers:
        thread.join()
    elapsed = time.monotonic() - started
    assert most_at_once[0] == 1
    # 6 callers, ~60 offers each: one run per interval (the first at once), not one per offer.
    assert int(elapsed / 0.5) - 1 <= len(runs) <= int(elapsed / 0.5) + 1, len(runs)
    gaps = [later - earlier for earlier, later in itertools.pairwise(runs)]
    assert min(gaps) >= 0.45


def test_a_failing_step_does_not_stop_the_others():
    ran = []

    def broken():
        raise RuntimeError("boom")

    assert housekeeping.run_due(interval=0, extra_steps=(broken, lambda: ran.append(1)))
    assert ran == [1]
