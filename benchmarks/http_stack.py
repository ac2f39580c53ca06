"""Request cost of the full stack: `/sfp/api/ping` and `/health` under daphne (ASGI) and under
gunicorn (WSGI, as production serves HTTP; ADR 0005), against daphne serving a bare ASGI app.

Starts daphne with `benchmarks.baseline_asgi` (baseline), then the server on one temporary
embedded-default data directory twice — daphne (`manage.py serve`), then gunicorn with 2 gthread
workers (4 threads each) — and drives each with the same number of keep-alive clients for the same
number of requests, printing throughput and p50/p99 latency.
"""

import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
REQUESTS_PER_CLIENT = int(os.environ.get("BENCH_REQUESTS", "300"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(port: int, path: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", path)
            connection.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing answered on port {port}")


def _drive(port: int, path: str) -> dict:
    latencies: list[float] = []
    lock = threading.Lock()

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine = []
        for _ in range(REQUESTS_PER_CLIENT):
            started = time.perf_counter()
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{path} answered {response.status}")
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": quantiles[49] * 1000,
        "p99_ms": quantiles[98] * 1000,
    }


def _serve(command: list[str], env: dict, port: int, ready_path: str):
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _wait_until_up(port, ready_path)
    return process


def run() -> None:
    base_env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    results = []

    port = _free_port()
    daphne = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
    process = _serve([*daphne, "benchmarks.baseline_asgi:application"], base_env, port, "/")
    try:
        _drive(port, "/")  # warm-up
        results.append(("baseline: bare ASGI under daphne", _drive(port, "/")))
    finally:
        process.terminate()
        process.wait()

    with tempfile.TemporaryDirectory() as data_dir:
        env = base_env | {"SFP_DATA_DIR": data_dir, "LOG_LEVEL": "WARNING", "SFP_MODE": "embedded"}
        servers = [
            ("daphne", lambda port: [sys.executable, "manage.py", "serve", "--port", str(port)]),
            ("gunicorn", lambda port: [
                sys.executable, "-m", "gunicorn", "sfpserver.wsgi:application",
                "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread",
                "--workers", "2", "--threads", "4",
            ]),
        ]  # fmt: skip
        for name, command in servers:
            port = _free_port()
            process = _serve(command(port), env, port, "/sfp/api/ping")
            try:
                _drive(port, "/sfp/api/ping")  # warm-up
                results.append((f"{name}: GET /sfp/api/ping", _drive(port, "/sfp/api/ping")))
                results.append((f"{name}: GET /health", _drive(port, "/health")))
            finally:
                process.terminate()
                process.wait()
            env = env | {"SFP_EMBEDDED_WORKER": "false"}  # daphne migrated; one worker is enough

    print(f"{CLIENTS} keep-alive clients x {REQUESTS_PER_CLIENT} requests each")
    print(f"{'case':40} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, figures in results:
        print(f"{name:40} {figures['rps']:8.0f} {figures['p50_ms']:8.2f} {figures['p99_ms']:8.2f}")
