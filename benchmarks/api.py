"""API speed: authenticated list endpoints under gunicorn against a bare Django+gunicorn view
doing one indexed SELECT, in the same run, on PostgreSQL.

A scratch PostgreSQL database (migrated, dropped at the end) holds an owner, an application token,
a user session, a few projects and tasks, and the baseline's 1,000-row table. Two gunicorn
servers run side by side with the same worker class, workers and threads (`BENCH_API_WORKERS`,
`BENCH_API_THREADS`): ours through the production entry point (`deploy/gunicorn.conf.py`,
`sfpserver.wsgi:application`, `SFP_MODE=production`, audit on), and `benchmarks.baseline_wsgi`.
The load generator is an asyncio client in this process holding `BENCH_API_CONNECTIONS` (16)
keep-alive connections, each sending its next request as soon as the last answer is read. Cases
take turns in short rounds so a noisy moment on the shared machine lands on all of them alike.
Besides req/s and latency it prints the servers' CPU per request (user + system time of the
gunicorn master and workers, from /proc), which a busy shared machine disturbs less than
throughput. Afterwards the audit table must hold one row per authenticated request sent.
Targets: each case at least half the baseline's req/s, p99 ≤ 25 ms.
"""

import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432")
DATABASE = "sfp_bench_api"
DATABASE_URL = f"{SERVER_URL}/{DATABASE}"
CONNECTIONS = int(os.environ.get("BENCH_API_CONNECTIONS", "16"))
WORKERS = os.environ.get("BENCH_API_WORKERS", "2")
THREADS = os.environ.get("BENCH_API_THREADS", "8")
ROUNDS = int(os.environ.get("BENCH_API_ROUNDS", "3"))
ROUND_SECONDS = float(os.environ.get("BENCH_API_ROUND_SECONDS", "4"))
WARMUP_SECONDS = 1.0
PATHS = ["/sfp/api/projects", "/sfp/api/tasks?limit=25", "/sfp/api/environments"]
BASELINE = "baseline: bare Django, one indexed SELECT"

SEED_TASKS = """
INSERT INTO tasks_taskexecution (
    operation_id, type, data, status, progress, current_step, attempts, max_attempts, pool,
    priority, timeout_seconds, backoff_seconds, backoff_max_seconds, schedule_type, runs_started,
    step, engine_run_id, task_path, triggered_by_kind, triggered_by_id, triggered_by_label,
    created_at, updated_at, worker_id, cancel_requested, event_seq
)
SELECT md5(g::text), 'noop', '{}'::jsonb, 'completed', 100, '', 1, 1, 'standard', 'low', 3600,
       5, 300, 'immediate', 0, '', '', 'apps.tasks.tasks.noop', 'schedule', '', 'benchmark',
       now() - g * interval '1 second', now(), '', false, 0
FROM generate_series(1, 200) AS g
"""
SEED_BASELINE = """
CREATE TABLE benchmark_baseline (id integer PRIMARY KEY, name text NOT NULL);
INSERT INTO benchmark_baseline SELECT g, md5(g::text) FROM generate_series(1, 1000) AS g;
"""


def _env() -> dict:
    keep = {k: v for k, v in os.environ.items() if k not in {"SFP_DATA_DIR", "SFP_MODE"}}
    return keep | {
        "DJANGO_SETTINGS_MODULE": "sfpserver.settings.base",
        "SFP_MODE": "production",
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4"),
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
        "SFP_ENCRYPTION_KEYS": "YmVuY2htYXJrLW9ubHktdmF1bHQta2V5LTMyLWJ5dGVzIQ==",
        "SFP_JWT_SECRET": secrets.token_urlsafe(40),
        "LOG_LEVEL": "WARNING",
        "SFP_API_WORKERS": WORKERS,
        "SFP_API_THREADS": THREADS,
        "BASELINE_DATABASE_NAME": DATABASE,
    }


def _admin(statement: str) -> None:
    import psycopg

    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as admin:
        admin.execute(statement)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _prepare_database(env: dict) -> None:
    import psycopg

    _admin(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    _admin(f"CREATE DATABASE {DATABASE}")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute(SEED_BASELINE)
        conn.execute(SEED_TASKS)
        conn.execute("VACUUM ANALYZE")


def _credentials() -> dict[str, str]:
    """An owner's access token (a user JWT with a live session) and an application token."""
    from django.test import RequestFactory

    from apps.accounts.principal import principal_for_user
    from apps.accounts.services import app_token_create, owner_bootstrap, session_login
    from apps.projects.services import project_create

    password = secrets.token_urlsafe(18)
    user = owner_bootstrap(email="bench@example.com", password=password).user
    request = RequestFactory().post("/sfp/api/auth/admin/login")
    request.request_id = "benchmark"
    session = session_login(email="bench@example.com", password=password, request=request)
    owner = principal_for_user(user)
    _, app_token = app_token_create(actor=owner, name="benchmark", expires_in_days=30)
    for n in range(10):
        project_create(
            actor=owner,
            identifier=f"bench/repo-{n}",
            remote_url=f"https://github.com/bench/repo-{n}",
        )
    return {"app token": app_token, "user JWT": session.access_token}


def _serve(command: list[str], env: dict, port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[:4]} exited: {process.stderr.read().decode()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
            return process
        except urllib.error.HTTPError:
            return process  # it answers; a 404 at the root is an answer
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"nothing answered on port {port}")


async def _one_connection(port: int, request: bytes, until: float, latencies: list) -> int:
    """Send `request` over one keep-alive connection until `until`; return the requests sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = 0
    try:
        while time.perf_counter() < until:
            began = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 "):
                raise RuntimeError(f"not an HTTP/1.1 answer: {head[:300]!r}")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
            if status != 200:
                raise RuntimeError(f"answered {status}: {body[:300]!r}")
            latencies.append(time.perf_counter() - began)
            sent += 1
    finally:
        writer.close()
    return sent


async def _drive(port: int, path: str, authorization: str, seconds: float) -> dict:
    header = f"Authorization: {authorization}\r\n" if authorization else ""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: localhost\r\n{header}Connection: keep-alive\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    began = time.perf_counter()
    until = began + seconds
    counts = await asyncio.gather(
        *(_one_connection(port, request, until, latencies) for _ in range(CONNECTIONS))
    )
    return {"seconds": time.perf_counter() - began, "requests": sum(counts), "latencies": latencies}


def _server_cpu_seconds(pid: int) -> float:
    """User + system CPU of a gunicorn master and its workers so far (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    total = 0
    for process in [pid, *map(int, children)]:
        fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def _summary(runs: list[dict]) -> dict:
    latencies = [value for run in runs for value in run["latencies"]]
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "requests": sum(run["requests"] for run in runs),
        "rps": sum(run["requests"] for run in runs) / sum(run["seconds"] for run in runs),
        "p50_ms": cuts[49] * 1000,
        "p99_ms": cuts[98] * 1000,
        "cpu_ms": 1000 * sum(run["cpu"] for run in runs) / sum(run["requests"] for run in runs),
    }


def _audit_rows() -> int:
    import psycopg

    with psycopg.connect(DATABASE_URL) as conn:
        return conn.execute(
            "SELECT count(*) FROM accounts_auditevent WHERE action = 'request'"
        ).fetchone()[0]


def _measure(servers: dict[int, int], credentials: dict) -> tuple[dict, int]:
    """`servers` maps each port to its gunicorn master's pid."""
    ours_port, baseline_port = servers
    cases = {BASELINE: (baseline_port, "/", "")}
    for path in PATHS:
        for kind, raw in credentials.items():
            cases[f"{kind}: GET {path}"] = (ours_port, path, f"Bearer {raw}")
    runs: dict[str, list] = {label: [] for label in cases}
    authenticated = 0
    for port, path, authorization in cases.values():
        result = asyncio.run(_drive(port, path, authorization, WARMUP_SECONDS))
        authenticated += result["requests"] if authorization else 0
    for _ in range(ROUNDS):
        for label, (port, path, authorization) in cases.items():
            cpu_before = _server_cpu_seconds(servers[port])
            result = asyncio.run(_drive(port, path, authorization, ROUND_SECONDS))
            result["cpu"] = _server_cpu_seconds(servers[port]) - cpu_before
            runs[label].append(result)
            authenticated += result["requests"] if authorization else 0
    return {label: _summary(values) for label, values in runs.items()}, authenticated


def _report(results: dict, sent: int, recorded: int) -> None:
    baseline = results[BASELINE]["rps"]
    print(
        f"{CONNECTIONS} keep-alive connections, gunicorn gthread {WORKERS} workers x {THREADS}"
        f" threads, {ROUNDS} rounds x {ROUND_SECONDS:.0f} s per case, PostgreSQL, cpus "
        f"{os.cpu_count()}"
    )
    print(f"{'case':52} {'req/s':>7} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7} {'CPU ms/req':>10}")
    missed = []
    for label, figures in results.items():
        ratio = figures["rps"] / baseline
        ok = label == BASELINE or (ratio >= 0.5 and figures["p99_ms"] <= 25)
        if not ok:
            missed.append(label)
        print(
            f"{label:52} {figures['rps']:7.0f} {ratio:5.2f}x {figures['p50_ms']:7.2f}"
            f" {figures['p99_ms']:7.2f} {figures['cpu_ms']:10.2f}{'' if ok else '  MISSES TARGET'}"
        )
    print(f"audit rows: {recorded:,} for {sent:,} authenticated requests sent")
    if recorded < sent:
        missed.append("audit rows missing")
    if missed:
        print(f"targets missed: {missed}")


def run() -> None:
    env = _env()
    began = time.perf_counter()
    _prepare_database(env)
    os.environ.update(env)
    import django

    django.setup()
    from django.db import connection

    servers = []
    try:
        credentials = _credentials()
        connection.close()
        ours_port, baseline_port = _free_port(), _free_port()
        gunicorn = [sys.executable, "-m", "gunicorn", "--worker-class", "gthread"]
        servers.append(_serve(
            [*gunicorn, "--config", "deploy/gunicorn.conf.py", "--bind", f"127.0.0.1:{ours_port}",
             "sfpserver.wsgi:application"], env, ours_port,
        ))  # fmt: skip
        servers.append(_serve(
            [*gunicorn, "--workers", WORKERS, "--threads", THREADS,
             "--bind", f"127.0.0.1:{baseline_port}", "benchmarks.baseline_wsgi:application"],
            env, baseline_port,
        ))  # fmt: skip
        before = _audit_rows()
        results, sent = _measure(
            {ours_port: servers[0].pid, baseline_port: servers[1].pid}, credentials
        )
        for server in servers:
            server.terminate()
            server.wait()
        recorded = _audit_rows() - before
    finally:
        for server in servers:
            if server.poll() is None:
                server.kill()
                server.wait()
        _admin(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    _report(results, sent, recorded)
    print(f"\ntotal run time {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    run()
