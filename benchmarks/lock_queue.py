"""Lock queue: hand-off latency (release → next holder acquired) and throughput with 50 concurrent
contenders on one resource, on PostgreSQL.

Each round, 50 threads (each with its own connection) queue on one resource at the same instant
(request throughput); then the holders release one after another. A release hands the lock to
the next ticket inside its own transaction, so the hand-off latency is the time release() takes
to commit, and hand-offs per second follow from it. FIFO order and a single holder are checked
every round. Baseline in the same run: one INSERT+COMMIT round trip.
"""

import os
import threading
import time

from benchmarks.task_queue import DATABASE_URL, ROOT, _baseline, _prepare_database, _quantiles

CONTENDERS = int(os.environ.get("BENCH_CONTENDERS", "50"))
ROUNDS = int(os.environ.get("BENCH_LOCK_ROUNDS", "4"))


def run() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SFP_DATA_DIR"} | {
        "DJANGO_SETTINGS_MODULE": "sfpserver.settings.test",
        "DATABASE_URL": DATABASE_URL,
        "LOG_LEVEL": "WARNING",
    }
    _prepare_database(env)
    os.environ.update(env)
    import django

    django.setup()
    from django.db import connection

    from apps.environments import locks
    from apps.environments.models import LockStatus, LockTicket

    def contend(round_no: int, n: int, barrier: threading.Barrier, taken: list) -> None:
        try:
            barrier.wait()
            taken.append(
                locks.request_lock(
                    holder=locks.Holder(label=f"bench-{round_no}-{n}"),
                    repository="bench/repo", resource="env:prod", lease_seconds=600,
                )
            )  # fmt: skip
        finally:
            connection.close()

    base_p50, base_p99 = _baseline()
    request_seconds, handoffs, handoff_total = 0.0, [], 0.0
    for round_no in range(ROUNDS):
        barrier, taken = threading.Barrier(CONTENDERS), []
        threads = [
            threading.Thread(target=contend, args=(round_no, n, barrier, taken))
            for n in range(CONTENDERS)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        request_seconds += time.perf_counter() - started
        assert LockTicket.objects.filter(status=LockStatus.ACQUIRED).count() == 1
        # Each release hands the lock to the next ticket inside the same transaction: the
        # hand-off is complete (committed) when release() returns.
        order = []
        for _ in range(CONTENDERS):
            holder = LockTicket.objects.get(status=LockStatus.ACQUIRED)
            order.append(holder.id)
            started = time.perf_counter()
            locks.release(
                repository="bench/repo", resource="env:prod", ticket_id=holder.ticket_id,
                holder=locks.Holder(label=holder.holder_label), released_by="bench",
            )  # fmt: skip
            elapsed = time.perf_counter() - started
            handoffs.append(elapsed)
            handoff_total += elapsed
        assert order == sorted(order), "FIFO violated"
    double = LockTicket.objects.filter(status=LockStatus.ACQUIRED).count()
    p50, p99 = _quantiles(handoffs)
    print(f"{CONTENDERS} contenders x {ROUNDS} rounds on one resource (root {ROOT.name})")
    print(f"{'case':44} {'p50 ms':>8} {'p99 ms':>8} {'per s':>8}")
    print(f"{'baseline: INSERT+COMMIT round trip':44} {base_p50:8.2f} {base_p99:8.2f} {'':>8}")
    label = "hand-off: release → next holder acquired"
    print(f"{label:44} {p50:8.2f} {p99:8.2f} {len(handoffs) / handoff_total:8.0f}")
    label = f"{CONTENDERS} concurrent lock requests (per second)"
    print(f"{label:44} {'':>8} {'':>8} {CONTENDERS * ROUNDS / request_seconds:8.0f}")
    print(f"holders left at the end: {double} (must be 0); FIFO held in every round")
