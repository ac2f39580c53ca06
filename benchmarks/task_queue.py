"""Database task backend vs Celery 5 + Redis: enqueue call, enqueue→start p50/p99, noop burst.

Uses a scratch PostgreSQL database (`sfp_bench` on $BENCH_DATABASE_URL's server, default the
local one, dropped afterwards), real `manage.py runworker` processes (one slot each) and the real
enqueue path (django.tasks → DatabaseBackend, NOTIFY). Baselines measured in the same run: one
INSERT+COMMIT round trip on the same server (the floor of any database queue), and Celery 5 with
a Redis broker ($BENCH_CELERY_BROKER_URL, flushed first) with the same number of worker processes
(`--pool solo`, one process each). Also counted, with Django's query capture around one claimed
and finished noop in this process: the SQL statements the worker sends per task.
"""

import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432")
DATABASE_URL = f"{SERVER_URL}/sfp_bench"
LATENCY_SAMPLES = int(os.environ.get("BENCH_LATENCY_SAMPLES", "100"))
BURST = int(os.environ.get("BENCH_BURST", "400"))
WORKER_COUNTS = (1, 2)


def _quantiles(values: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


def _prepare_database(env: dict) -> None:
    import psycopg

    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS sfp_bench WITH (FORCE)")
        admin.execute("CREATE DATABASE sfp_bench")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


def _drop_database() -> None:
    import psycopg

    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS sfp_bench WITH (FORCE)")


def _baseline() -> tuple[float, float]:
    import psycopg

    samples = []
    with psycopg.connect(DATABASE_URL) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_baseline (id uuid primary key)")
        conn.commit()
        for _ in range(200):
            started = time.perf_counter()
            conn.execute("INSERT INTO bench_baseline VALUES (%s)", (uuid.uuid4(),))
            conn.commit()
            samples.append(time.perf_counter() - started)
    return _quantiles(samples)


def _start_workers(count: int, env: dict) -> list[subprocess.Popen]:
    workers = []
    for index in range(count):
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "runworker", "--pool", "standard", "--slots", "1",
             "--worker-id", f"bench-{index}"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        # The toolchain report comes first; "Worker …: pool standard, …" once it is ready.
        while not (line := worker.stdout.readline()).startswith("Worker "):
            if not line:
                raise RuntimeError("a benchmark worker exited before it was ready")
        workers.append(worker)
    time.sleep(0.5)  # let LISTEN connections settle
    return workers


def _submit_noop():
    from apps.tasks.models import TaskExecution, TriggerKind
    from apps.tasks.tasks import DECLARED

    declared = DECLARED["noop"]
    execution = TaskExecution.objects.create(
        type="noop", data={}, pool="standard", max_attempts=1, task_path=declared.module_path,
        triggered_by_kind=TriggerKind.SCHEDULE, triggered_by_label="benchmark",
    )  # fmt: skip
    declared.enqueue(execution.operation_id)
    return execution.operation_id


def _measure(worker_count: int, env: dict) -> dict:
    from apps.tasks.models import TaskExecution

    workers = _start_workers(worker_count, env)
    try:
        latencies, calls = [], []
        for _ in range(LATENCY_SAMPLES):
            called = time.perf_counter()
            operation_id = _submit_noop()
            calls.append(time.perf_counter() - called)
            while True:
                row = (
                    TaskExecution.objects.filter(pk=operation_id, status="completed")
                    .values("available_at", "started_at")
                    .first()
                )
                if row:
                    break
                time.sleep(0.001)
            latencies.append((row["started_at"] - row["available_at"]).total_seconds())
        started = time.perf_counter()
        ids = [_submit_noop() for _ in range(BURST)]
        while TaskExecution.objects.filter(pk__in=ids, status="completed").count() < BURST:
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
    p50, p99 = _quantiles(latencies)
    call_p50, _ = _quantiles(calls)
    return {"call": call_p50, "p50": p50, "p99": p99, "throughput": BURST / elapsed}


def _start_celery_workers(count: int, env: dict) -> list[subprocess.Popen]:
    from benchmarks import celery_noop

    celery = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
    command = [
        celery, "-A", "benchmarks.celery_noop", "worker", "--pool", "solo", "--loglevel",
        "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    workers = [
        subprocess.Popen(
            [*command, "-n", f"bench-{index}@%h"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for index in range(count)
    ]
    # Ready when every worker has taken a task: send a few per worker and wait for all.
    reports = celery_noop._reports
    warmup = 20 * count
    for _ in range(warmup):
        celery_noop.noop.delay(time.time(), False)
    deadline = time.monotonic() + 60
    while reports.llen(celery_noop.DONE_KEY) < warmup:
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            raise RuntimeError("the Celery benchmark workers did not start")
        time.sleep(0.05)
    reports.delete(celery_noop.DONE_KEY, celery_noop.STARTED_KEY)
    return workers


def _measure_celery(worker_count: int, env: dict) -> dict:
    from benchmarks import celery_noop

    reports = celery_noop._reports
    workers = _start_celery_workers(worker_count, env)
    try:
        calls = []
        for sample in range(LATENCY_SAMPLES):
            called = time.perf_counter()
            celery_noop.noop.delay(time.time(), True)
            calls.append(time.perf_counter() - called)
            while reports.llen(celery_noop.STARTED_KEY) <= sample:
                time.sleep(0.001)
        latencies = [float(v) for v in reports.lrange(celery_noop.STARTED_KEY, 0, -1)]
        started = time.perf_counter()
        for _ in range(BURST):
            celery_noop.noop.delay(time.time(), False)
        while reports.llen(celery_noop.DONE_KEY) < BURST:
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
        reports.delete(celery_noop.DONE_KEY, celery_noop.STARTED_KEY)
    p50, p99 = _quantiles(latencies)
    call_p50, _ = _quantiles(calls)
    return {"call": call_p50, "p50": p50, "p99": p99, "throughput": BURST / elapsed}


def _statements_per_task() -> list[str]:
    """The SQL one worker slot sends to claim and finish one noop, captured for real."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.tasks import lifecycle
    from apps.tasks.worker import Worker

    worker = Worker(pools=["standard"], slots=1, worker_id="bench-capture")
    _submit_noop()
    with CaptureQueriesContext(connection) as captured:
        execution = lifecycle.claim_next(
            pools=worker.pools, worker_id=worker.worker_id, lease_seconds=worker.lease_seconds
        )
        worker._run(execution)
    return [query["sql"] for query in captured.captured_queries]


def run() -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"SFP_DATA_DIR"}} | {
        "DJANGO_SETTINGS_MODULE": "sfpserver.settings.test",
        "DATABASE_URL": DATABASE_URL,
        "LOG_LEVEL": "WARNING",
    }
    _prepare_database(env)
    os.environ.update(env)
    import django

    django.setup()
    from django.db import connection

    from benchmarks import celery_noop

    celery_noop._reports.flushdb()
    try:
        base_p50, base_p99 = _baseline()
        statements = _statements_per_task()
        rows = []
        for count in WORKER_COUNTS:
            rows.append((f"database backend, {count} worker(s)", _measure(count, env)))
            rows.append((f"Celery 5 + Redis, {count} worker(s)", _measure_celery(count, env)))
    finally:
        connection.close()
        _drop_database()
    print(f"SQL statements per noop task (claim → finish, one slot): {len(statements)}")
    if os.environ.get("BENCH_SHOW_SQL"):
        print("\n".join(f"  {sql[:160]}" for sql in statements))
    header = f"{'case':36} {'enqueue ms':>10} {'p50 ms':>8} {'p99 ms':>8} {'tasks/s':>8}"
    print(header + "   (enqueue→start; targets: enqueue ≤ 1.5, p50 ≤ 3, p99 ≤ 10)")
    print(f"{'baseline: INSERT+COMMIT round trip':36} {'':>10} {base_p50:8.2f} {base_p99:8.2f}")
    for label, f in rows:
        print(
            f"{label:36} {f['call']:10.2f} {f['p50']:8.2f} {f['p99']:8.2f} {f['throughput']:8.0f}"
        )
    by_count = dict(rows)
    for count in WORKER_COUNTS:
        ours = by_count[f"database backend, {count} worker(s)"]["throughput"]
        theirs = by_count[f"Celery 5 + Redis, {count} worker(s)"]["throughput"]
        print(f"throughput ratio database/Celery, {count} worker(s): {ours / theirs:.2f}")
