"""Database task backend: enqueue→start latency (p50/p99) and noop throughput, 1 and 2 workers.

Uses a scratch PostgreSQL database (`sfp_bench` on $BENCH_DATABASE_URL's server, default the
local one), real `manage.py runworker` processes and the real enqueue path (django.tasks →
DatabaseBackend, NOTIFY). Baseline measured in the same run: one INSERT+COMMIT round trip on the
same server, the floor of any database queue.
"""

import os
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


def _quantiles(values: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


def _prepare_database(env: dict) -> None:
    import psycopg

    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS sfp_bench")
        admin.execute("CREATE DATABASE sfp_bench")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


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
        latencies = []
        for _ in range(LATENCY_SAMPLES):
            operation_id = _submit_noop()
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
    return {"p50": p50, "p99": p99, "throughput": BURST / elapsed}


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
    base_p50, base_p99 = _baseline()
    print(f"{'case':44} {'p50 ms':>8} {'p99 ms':>8} {'tasks/s':>8}")
    print(f"{'baseline: INSERT+COMMIT round trip':44} {base_p50:8.2f} {base_p99:8.2f} {'':>8}")
    for count in (1, 2):
        figures = _measure(count, env)
        label = f"noop enqueue→start, {count} worker(s)"
        print(
            f"{label:44} {figures['p50']:8.2f} {figures['p99']:8.2f} {figures['throughput']:8.0f}"
        )
