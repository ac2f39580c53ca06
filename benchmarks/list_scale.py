"""List pages at scale: the tasks and audit lists' first and deep pages at 10k, 100k and 1M rows,
through the real views, beside a raw indexed SELECT … LIMIT 25 in the same run; EXPLAIN plans.

Its own scratch PostgreSQL database (migrated, seeded by `generate_series`, dropped at the end).
Rows are added in steps (10k → 100k → 1M) and VACUUM ANALYZEd after each step, as autovacuum
would; every third row shares its timestamp with the next two, so the id breaks ties. Each case
is `REQUESTS` GETs through Django's test client with an owner's access token, the whole
middleware stack included (authentication, the audit row each request writes): the first page
(no cursor) and a deep page (the cursor of the row 90 % of the way down), 25 rows each, taking
turns. The tasks list also shows its published `offset` parameter at the same depth, a few
times, for contrast, and a GET of `/sfp/api/users/me` shows what the stack alone costs.
Targets: deep p50 and p99 at most twice the first page's, p99 ≤ 25 ms.
"""

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432")
DATABASE = "sfp_bench_lists"
DATABASE_URL = f"{SERVER_URL}/{DATABASE}"
SIZES = [int(s) for s in os.environ.get("BENCH_LIST_SIZES", "10000,100000,1000000").split(",")]
REQUESTS = int(os.environ.get("BENCH_LIST_REQUESTS", "500"))
OFFSET_REQUESTS = 10
LIMIT = 25
# The same stack (authentication, the audit row) around a one-row read: what any GET costs.
STACK_PATH = "/sfp/api/users/me"
DEPTH = 0.9

SEED_TASKS = """
INSERT INTO tasks_taskexecution (
    operation_id, type, data, status, progress, current_step, attempts, max_attempts, pool,
    priority, timeout_seconds, backoff_seconds, backoff_max_seconds, schedule_type, runs_started,
    step, engine_run_id, task_path, triggered_by_kind, triggered_by_id, triggered_by_label,
    created_at, updated_at, worker_id, cancel_requested, event_seq
)
SELECT md5(g::text), 'noop', '{}'::jsonb,
       (ARRAY['completed', 'completed', 'failed', 'cancelled'])[1 + g %% 4], 100, '', 1, 1,
       'standard', 'low', 3600, 5, 300, 'immediate', 0, '', '', 'apps.tasks.tasks.noop',
       'schedule', '', 'benchmark', t, t, '', false, 0
FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS g,
     LATERAL (SELECT now() - interval '30 days' + (g / 3) * interval '1 millisecond') AS s(t)
"""

SEED_AUDIT = """
INSERT INTO accounts_auditevent (
    occurred_at, action, actor_email, actor_token_id, actor_role, method, path, operation,
    status_code, user_agent, request_id, target_type, target_id
)
SELECT now() - interval '30 days' + (g / 3) * interval '1 millisecond', 'request',
       'seed@example.com', '', 'owner', 'GET', '/sfp/api/projects/' || (g %% 97),
       'ProjectsController_list', 200, 'benchmark', md5(g::text), '', ''
FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS g
"""

LISTS = {
    "tasks": {
        "path": "/sfp/api/tasks",
        "table": "tasks_taskexecution",
        "seed": SEED_TASKS,
        "baseline": "SELECT * FROM tasks_taskexecution {where} "
        "ORDER BY created_at DESC, operation_id DESC LIMIT 25",
        "where": "WHERE (created_at, operation_id) < (%s, %s)",
    },
    "audit": {
        "path": "/sfp/api/audit",
        "table": "accounts_auditevent",
        "seed": SEED_AUDIT,
        "baseline": "SELECT * FROM accounts_auditevent {where} "
        "ORDER BY occurred_at DESC, id DESC LIMIT 25",
        "where": "WHERE (occurred_at, id) < (%s, %s)",
    },
}


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if k != "SFP_DATA_DIR"} | {
        "DJANGO_SETTINGS_MODULE": "sfpserver.settings.test",
        "DATABASE_URL": DATABASE_URL,
        "LOG_LEVEL": "WARNING",
    }


def _admin(statement: str) -> None:
    import psycopg

    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as admin:
        admin.execute(statement)


def _prepare_database(env: dict) -> None:
    _admin(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    _admin(f"CREATE DATABASE {DATABASE}")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


def _seed(spec: dict, start: int, stop: int) -> float:
    import psycopg

    began = time.perf_counter()
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute(spec["seed"], {"start": start, "stop": stop})
        conn.execute(f"VACUUM ANALYZE {spec['table']}")
    return time.perf_counter() - began


def _quantiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000


def _time_views(client, path: str, cases: dict[str, dict], count: int) -> dict:
    """Each case `count` times, the cases taking turns, so a noisy moment on a shared machine
    lands on all of them alike."""
    samples = {label: [] for label in cases}
    for n in range(count + min(20, count)):
        for label, params in cases.items():
            began = time.perf_counter()
            response = client.get(path, params)
            elapsed = time.perf_counter() - began
            assert response.status_code == 200, response.content[:300]
            assert path == STACK_PATH or len(response.json()["items"]) == LIMIT
            if n >= min(20, count):
                samples[label].append(elapsed)
    return {label: _quantiles(values) for label, values in samples.items()}


def _time_sql(sql: str, params: list, count: int) -> tuple[float, float]:
    from django.db import connection

    samples = []
    with connection.cursor() as cursor:
        for n in range(count + 20):
            began = time.perf_counter()
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            if n >= 20:
                samples.append(time.perf_counter() - began)
            assert len(rows) == LIMIT
    return _quantiles(samples)


def _deep_row(name: str, size: int):
    from apps.accounts.models import AuditEvent
    from apps.tasks.models import TaskExecution

    if name == "tasks":
        return TaskExecution.objects.order_by("-created_at", "-operation_id")[int(size * DEPTH)]
    return AuditEvent.objects.order_by("-occurred_at", "-id")[int(size * DEPTH)]


def _explain(client, path: str, params: dict, table: str) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of every statement the view sent to the list's table."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        client.get(path, params)
    plans = []
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            sql = query["sql"]
            if f'FROM "{table}"' not in sql or sql.startswith(("EXPLAIN", "INSERT")):
                continue
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) {sql}")
            plan = "\n".join("    " + row[0] for row in cursor.fetchall())
            plans.append(f"  {sql[:160]}{' …' if len(sql) > 160 else ''}\n{plan}")
    return plans


def _owner_client():
    import secrets

    from django.test import Client, RequestFactory

    from apps.accounts.services import owner_bootstrap, session_login

    password = secrets.token_urlsafe(18)
    owner_bootstrap(email="bench@example.com", password=password)
    request = RequestFactory().post("/sfp/api/auth/admin/login")
    request.request_id = "benchmark"
    token = session_login(email="bench@example.com", password=password, request=request)
    return Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {token.access_token}")


def _measure(client, name: str, spec: dict, size: int) -> dict:
    from apps.accounts.selectors import AUDIT_KEYSET
    from apps.tasks.selectors import EXECUTION_KEYSET

    keyset = EXECUTION_KEYSET if name == "tasks" else AUDIT_KEYSET
    deep = _deep_row(name, size)
    key = [getattr(deep, keyset.first), getattr(deep, keyset.second)]
    first_params = {"limit": LIMIT}
    deep_params = {"limit": LIMIT, "cursor": keyset.encode(deep)}
    result = {
        "baseline first": _time_sql(spec["baseline"].format(where=""), [], REQUESTS),
        "baseline deep": _time_sql(spec["baseline"].format(where=spec["where"]), key, REQUESTS),
    }
    result |= _time_views(
        client, spec["path"], {"view first": first_params, "view deep": deep_params}, REQUESTS
    )
    result |= _time_views(client, STACK_PATH, {f"stack: GET {STACK_PATH}": {}}, REQUESTS // 2)
    if name == "tasks":
        offset_params = {"limit": LIMIT, "offset": int(size * DEPTH)}
        result |= _time_views(
            client, spec["path"], {"view deep by offset (published)": offset_params},
            OFFSET_REQUESTS,
        )  # fmt: skip
    if size == SIZES[-1]:
        result["plans"] = {
            "first": _explain(client, spec["path"], first_params, spec["table"]),
            "deep": _explain(client, spec["path"], deep_params, spec["table"]),
        }
    return result


def _report(results: dict) -> None:
    failures = []
    print(f"{REQUESTS} requests per case, {LIMIT} rows a page, deep = {DEPTH:.0%} down the list")
    print(f"{'list':6} {'rows':>9}  {'case':34} {'p50 ms':>8} {'p99 ms':>8}")
    for (name, size), cases in results.items():
        for label, value in cases.items():
            if label in ("plans", "seconds"):
                continue
            p50, p99 = value
            print(f"{name:6} {size:9,}  {label:34} {p50:8.2f} {p99:8.2f}")
        (f50, f99), (d50, d99) = cases["view first"], cases["view deep"]
        worst = max(f99, d99)
        verdict = f"deep/first p50 {d50 / f50:.2f}x p99 {d99 / f99:.2f}x; p99 max {worst:.1f}"
        ok = d50 <= 2 * f50 and d99 <= 2 * f99 and worst <= 25
        print(f"{'':18}{verdict} ms  {'ok' if ok else 'MISSES TARGET'}")
        if not ok:
            failures.append((name, size))
    for (name, size), cases in results.items():
        for which, plans in cases.get("plans", {}).items():
            print(f"\n-- EXPLAIN {name} {which} page at {size:,} rows")
            print("\n".join(plans))
    if failures:
        print(f"\ntargets missed: {failures}")


def run() -> None:
    env = _env()
    began = time.perf_counter()
    _prepare_database(env)
    os.environ.update(env)
    import django

    django.setup()
    from django.db import connection

    results = {}
    try:
        client = _owner_client()
        seeded = 0
        for size in SIZES:
            for name, spec in LISTS.items():
                seconds = _seed(spec, seeded + 1, size)
                print(f"seeded {name} to {size:,} rows in {seconds:.1f} s", flush=True)
            seeded = size
            for name, spec in LISTS.items():
                results[(name, size)] = _measure(client, name, spec, size)
    finally:
        connection.close()
        _admin(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    _report(results)
    print(f"\ntotal run time {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    run()
