"""Lock queue: hand-off latency (release committed → the next holder, in another process, knows
it holds) with 50 contenders on one resource, and any-one-of-a-set with 10 resources and 50
contenders (double grants, FIFO), on PostgreSQL.

Hand-off: 50 tickets queue on one resource; a child process runs one thread per waiting ticket,
each blocked in `lock_wait` (woken by NOTIFY through the child's one listening connection, never
by polling). The parent releases the holder; the instant its transaction commits is stamped by
its first on-commit callback; the child stamps the instant its woken thread has re-read its
ticket as acquired. Both use CLOCK_MONOTONIC (`time.perf_counter`), shared by the processes.
Baselines in the same run: a raw psycopg NOTIFY → LISTEN round trip between two connections,
and one INSERT+COMMIT round trip.

Any of a set: 10 resources held, 50 requests for any of them queued in order; the 10 holders
and then every grantee release concurrently (each thread holds ~2 ms). Every grantee checks at
the moment it learns of its grant that no earlier request still waits (FIFO), and afterwards
that no request was ever granted twice.
"""

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432")
DATABASE = "sfp_bench_locks"
DATABASE_URL = f"{SERVER_URL}/{DATABASE}"
CONTENDERS = int(os.environ.get("BENCH_CONTENDERS", "50"))
ROUNDS = int(os.environ.get("BENCH_LOCK_ROUNDS", "3"))
SET_SIZE = 10
REPOSITORY = "bench/repo"


def _quantiles(values: list[float]) -> tuple[float, float]:
    import statistics

    cuts = statistics.quantiles(values, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if k != "SFP_DATA_DIR"} | {
        "DJANGO_SETTINGS_MODULE": "sfpserver.settings.test",
        "DATABASE_URL": DATABASE_URL,
        "LOG_LEVEL": "WARNING",
    }


def _prepare_database(env: dict) -> None:
    import psycopg

    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DATABASE}")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


def _drop_database() -> None:
    import psycopg

    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def _baselines() -> dict[str, tuple[float, float]]:
    import psycopg

    notify_samples, insert_samples = [], []
    with (
        psycopg.connect(DATABASE_URL, autocommit=True) as listener,
        psycopg.connect(DATABASE_URL) as sender,
    ):
        listener.execute("LISTEN bench_baseline")
        sender.execute("CREATE TABLE IF NOT EXISTS bench_baseline (id uuid primary key)")
        sender.commit()
        for _ in range(200):
            started = time.perf_counter()
            sender.execute("SELECT pg_notify('bench_baseline', 'x')")
            sender.commit()
            next(iter(listener.notifies(timeout=5)))
            notify_samples.append(time.perf_counter() - started)
            started = time.perf_counter()
            sender.execute("INSERT INTO bench_baseline VALUES (%s)", (uuid.uuid4(),))
            sender.commit()
            insert_samples.append(time.perf_counter() - started)
    return {
        "baseline: raw NOTIFY → LISTEN round trip": _quantiles(notify_samples),
        "baseline: INSERT+COMMIT round trip": _quantiles(insert_samples),
    }


# --- the child: one thread per waiting ticket -------------------------------------------------


def _waiters_main(resource: str) -> None:
    import django

    django.setup()
    from django.db import connection

    from apps.environments import handoff
    from apps.environments.models import LockTicket
    from apps.environments.services import locks

    waiting = list(
        LockTicket.objects.select_related("resource_row").filter(
            resource_row__resource=resource, status="queued"
        )
    )
    out = threading.Lock()

    def wait(ticket) -> None:
        try:
            acquired = locks.lock_wait(ticket=ticket, seconds=120)
            known = time.perf_counter()
            with out:
                print(f"ACQUIRED {acquired.ticket_id} {acquired.status} {known!r}", flush=True)
        finally:
            connection.close()

    threads = [threading.Thread(target=wait, args=(t,)) for t in waiting]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # every thread subscribed and blocked in its wait
    print(f"READY {len(threads)} listening={handoff.listening()}", flush=True)
    for thread in threads:
        thread.join()


# --- the parent -------------------------------------------------------------------------------


def _handoff_round(round_no: int, env: dict) -> list[float]:
    from django.db import transaction

    from apps.environments.models import LockTicket
    from apps.environments.services import locks

    resource = f"custom:handoff-{round_no}"
    for n in range(CONTENDERS):
        locks.lock_request(
            holder=locks.Holder(key=f"bench:{round_no}:{n}", label=f"bench-{n}"),
            repository=REPOSITORY, resource=resource, lease_seconds=600,
        )  # fmt: skip
    child = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.lock_queue", "--waiters", resource],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    ready = child.stdout.readline()
    assert ready.startswith(f"READY {CONTENDERS - 1} listening=True"), ready
    latencies, order = [], []
    for _ in range(CONTENDERS - 1):
        holder = LockTicket.objects.get(resource_row__resource=resource, status="acquired")
        order.append(holder.id)
        committed = []
        with transaction.atomic():
            transaction.on_commit(lambda stamps=committed: stamps.append(time.perf_counter()))
            locks.lock_release(
                repository=REPOSITORY, resource=resource, ticket_id=holder.ticket_id,
                holder=locks.Holder(key=holder.holder_key, label="bench"),
            )  # fmt: skip
        line = child.stdout.readline().split()
        assert line[:1] == ["ACQUIRED"], line
        assert line[2] == "acquired", line
        latencies.append(max(0.0, float(line[3]) - committed[0]))
    child.wait(timeout=30)
    last = LockTicket.objects.get(resource_row__resource=resource, status="acquired")
    order.append(last.id)
    assert order == sorted(order), "FIFO violated"
    return latencies


def _any_of_a_set() -> dict:
    from django.db import connection

    from apps.environments.models import LockRequest
    from apps.environments.services import locks

    resources = [f"custom:pool-{n}" for n in range(SET_SIZE)]
    blockers = []
    for resource in resources:
        holder = locks.Holder(key=f"blocker:{resource}", label="blocker")
        ticket = locks.lock_request(
            holder=holder, repository=REPOSITORY, resource=resource, lease_seconds=600
        )
        blockers.append((holder, ticket))
    requests = [
        locks.lock_request_any(
            holder=locks.Holder(key=f"any:{n}", label=f"any-{n}"), repository=REPOSITORY,
            resources=resources, lease_seconds=600,
        )
        for n in range(CONTENDERS)
    ]  # fmt: skip
    fifo_breaks, errors, grant_latency = [], [], []
    barrier = threading.Barrier(CONTENDERS + SET_SIZE)

    def release(holder, ticket) -> None:
        try:
            barrier.wait()
            locks.lock_release(
                repository=REPOSITORY, resource=ticket.resource_row.resource,
                ticket_id=ticket.ticket_id, holder=holder,
            )  # fmt: skip
        except BaseException as error:  # noqa: BLE001 - counted below
            errors.append(error)
        finally:
            connection.close()

    def contend(n: int) -> None:
        try:
            request = requests[n]
            barrier.wait()
            started = time.perf_counter()
            request = locks.lock_request_wait(request=request, seconds=120)
            grant_latency.append(time.perf_counter() - started)
            if not request.granted_ticket_id:
                raise AssertionError(f"request {n} never granted")
            earlier_waiting = LockRequest.objects.filter(
                pk__lt=request.pk, granted_ticket__isnull=True, cancelled_at__isnull=True
            ).count()
            if earlier_waiting:
                fifo_breaks.append(n)
            time.sleep(0.002)
            ticket = request.granted_ticket
            locks.lock_release(
                repository=REPOSITORY, resource=ticket.resource_row.resource,
                ticket_id=ticket.ticket_id, holder=locks.Holder(key=f"any:{n}", label="any"),
            )  # fmt: skip
        except BaseException as error:  # noqa: BLE001 - counted below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=release, args=b) for b in blockers]
    threads += [threading.Thread(target=contend, args=(n,)) for n in range(CONTENDERS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    double = sum(
        1
        for request in LockRequest.objects.all()
        if request.tickets.filter(status__in=["acquired", "released", "expired"]).count() != 1
    )
    return {
        "errors": errors,
        "double": double,
        "fifo_breaks": fifo_breaks,
        "grants_per_s": CONTENDERS / elapsed,
    }


def run() -> None:
    env = _env()
    _prepare_database(env)
    os.environ.update(env)
    import django

    django.setup()
    from django.db import connection

    from apps.environments import handoff

    try:
        baselines = _baselines()
        latencies = []
        for round_no in range(ROUNDS):
            latencies += _handoff_round(round_no, env)
        any_of = _any_of_a_set()
    finally:
        handoff.stop_listener()
        connection.close()
        _drop_database()
    p50, p99 = _quantiles(latencies)
    print(f"{CONTENDERS} contenders on one resource x {ROUNDS} rounds ({len(latencies)} hand-offs)")
    print(f"{'case':52} {'p50 ms':>8} {'p99 ms':>8}")
    for label, (b50, b99) in baselines.items():
        print(f"{label:52} {b50:8.2f} {b99:8.2f}")
    label = "hand-off: release committed → next holder knows"
    print(f"{label:52} {p50:8.2f} {p99:8.2f}   (target p50 ≤ 5, p99 ≤ 15)")
    notify50, notify99 = baselines["baseline: raw NOTIFY → LISTEN round trip"]
    print(f"hand-off / raw NOTIFY round trip: p50 {p50 / notify50:.1f}x, p99 {p99 / notify99:.1f}x")
    print(
        f"any of {SET_SIZE} with {CONTENDERS} contenders: double grants {any_of['double']}, "
        f"FIFO breaks {len(any_of['fifo_breaks'])}, errors {len(any_of['errors'])}, "
        f"{any_of['grants_per_s']:.0f} grants/s"
    )
    if any_of["errors"]:
        raise SystemExit(f"errors: {any_of['errors'][:3]}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--waiters"]:
        _waiters_main(sys.argv[2])
    else:
        run()
