"""WebSocket fan-out: worker progress event → WebSocket clients, 1/100/500 subscribers on a task.

Runs the production shape: a scratch PostgreSQL database (`sfp_bench_ws`), the channels-redis
layer on the local Redis, one `manage.py serve --skip-bootstrap` (daphne) process, and a separate
worker process that creates an owner, an access token and an active task, then calls the real
`apps.tasks.lifecycle.record_progress` (UPDATE, then publish after commit). The worker puts its
wall-clock send time into the step text; every client parses it out of `task.progress` and
records receive - send (p50, p99, max; delivered/expected). Baseline in the same run: a bare
channel-layer `group_send` → `receive` through Redis in one process (no daphne, socket or DB).
"""

import asyncio
import base64
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.http_stack import _free_port
from benchmarks.task_queue import ROOT, SERVER_URL

DATABASE_NAME = "sfp_bench_ws"
DATABASE_URL = f"{SERVER_URL}/{DATABASE_NAME}"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
# Cases as subscribers@events-per-second: each subscriber count at a rate one daphne process
# keeps up with comfortably (latency), then at a higher one (100 @ 50/s is most of a core; at
# 500 @ 10/s it falls behind and a backlog builds).
CASES = [
    tuple(int(part) for part in case.split("@"))
    for case in os.environ.get("BENCH_WS_CASES", "1@50,100@10,100@50,500@5,500@10").split(",")
]
EVENTS = int(os.environ.get("BENCH_WS_EVENTS", "200"))
WARMUP = 10  # events sent first and left out of the figures
CONNECT_CONCURRENCY = int(os.environ.get("BENCH_WS_CONNECT_CONCURRENCY", "50"))
DRAIN_SECONDS = 15  # after the last event, how long stragglers may take before they count as lost

# Configuration the benchmark sets itself, never inherits.
_INHERITED_CONFIG = (
    "DATABASE_URL", "REDIS_URL", "SFP_MODE", "SFP_DATA_DIR", "DJANGO_SETTINGS_MODULE",
    "DJANGO_SECRET_KEY", "SFP_ENCRYPTION_KEYS", "SFP_JWT_SECRET", "SFP_CHANNEL_PREFIX",
)  # fmt: skip


def _environment(data_dir: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if k not in _INHERITED_CONFIG}
    return environment | {
        "DJANGO_SETTINGS_MODULE": "sfpserver.settings.base",
        "SFP_MODE": "production",
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        # Redis pub/sub channels ignore the database index: a prefix of its own keeps this run
        # apart from test suites publishing on the same Redis.
        "SFP_CHANNEL_PREFIX": f"sfpbench{os.getpid()}",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "SFP_ENCRYPTION_KEYS": base64.b64encode(secrets.token_bytes(32)).decode(),
        "SFP_DATA_DIR": data_dir,
        "LOG_LEVEL": "WARNING",
    }


def _admin(statement: str) -> None:
    import psycopg

    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as admin:
        admin.execute(statement)


def _percentiles(values_ns: list[int]) -> tuple[float, float, float]:
    if len(values_ns) < 2:
        only = values_ns[0] / 1e6 if values_ns else float("nan")
        return only, only, only
    cuts = statistics.quantiles(values_ns, n=100, method="inclusive")
    return cuts[49] / 1e6, cuts[98] / 1e6, max(values_ns) / 1e6


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (its threads included), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy_seconds() -> float:
    """CPU time every process on the machine has used (all cores), from /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _raise_open_files_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# --- the worker process -------------------------------------------------------------------------


def work() -> None:
    """Worker side: sets up an owner, an access token and an active task (printed as `ready
    {json}`), then each `run <tag> <count> <interval>` on stdin publishes that many progress
    events through `record_progress` and answers `done {json}`; `quit` ends it."""
    import django

    django.setup()
    from apps.tasks.lifecycle import record_progress

    token, operation_id = _owner_token_and_task()
    print("ready", json.dumps({"token": token, "operationId": operation_id}), flush=True)
    for line in sys.stdin:
        command = line.split()
        if command[0] == "quit":
            return
        _, tag, count, interval = command
        interval = float(interval)
        durations, cpu_started = [], time.process_time()
        next_at = time.perf_counter()
        for index in range(int(count)):
            started = time.perf_counter()
            record_progress(
                operation_id, progress=index % 100, step=f"bench {tag} {index} {time.time_ns()}"
            )
            durations.append(time.perf_counter() - started)
            # A fixed rate that never bursts to catch up after a slow publish.
            next_at = max(next_at + interval, time.perf_counter())
            time.sleep(max(0.0, next_at - time.perf_counter()))
        cpu = time.process_time() - cpu_started
        print("done", json.dumps({"durations": durations, "cpu": cpu}), flush=True)


class Worker:
    def __init__(self, env: dict):
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from benchmarks.ws_fanout import work; work()"],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        line = self.process.stdout.readline()
        if not line.startswith("ready "):
            self.process.kill()
            self.process.wait()
            raise RuntimeError("the worker process did not start")
        ready = json.loads(line[6:])
        self.token, self.operation_id = ready["token"], ready["operationId"]

    def start(self, tag: str, count: int, interval: float) -> None:
        self.process.stdin.write(f"run {tag} {count} {interval}\n")
        self.process.stdin.flush()

    def result(self) -> dict:
        line = self.process.stdout.readline()
        if not line.startswith("done "):
            raise RuntimeError(f"the worker process stopped: {line!r}")
        return json.loads(line[5:])

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.close()
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


# --- the server and its clients -----------------------------------------------------------------


def _start_server(env: dict, log_path: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--skip-bootstrap", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited early:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/sfp/api/ping", timeout=2):
                return server, port
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not answer in time") from None
            time.sleep(0.2)


async def _subscribe(url: str, token: str, operation_id: str):
    import websockets

    ws = await websockets.connect(
        url,
        origin="http://127.0.0.1",
        additional_headers={"Authorization": f"Bearer {token}"},
        open_timeout=60,
        max_queue=None,  # never let a slow reader push back on the server
    )
    assert json.loads(await ws.recv())["event"] == "ready"
    await ws.send(json.dumps({"action": "subscribe", "object": "task", "id": operation_id}))
    seen = [json.loads(await ws.recv())["event"] for _ in range(2)]
    assert seen == ["subscribed", "task.snapshot"], seen
    return ws


async def _follow(ws, tag: str, last: int, samples: list[tuple[int, int]]) -> None:
    """Record (event index, receive - send ns) for every progress event of this round."""
    while True:
        raw = await ws.recv()
        received = time.time_ns()
        message = json.loads(raw)
        if message.get("event") != "task.progress":
            continue
        _, event_tag, index, sent = message["payload"]["currentStep"].split(" ")
        if event_tag != tag:
            continue
        samples.append((int(index), received - int(sent)))
        if int(index) == last:
            return


async def _round(url: str, worker: Worker, server_pid: int, subscribers: int, rate: int) -> dict:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def connect():
        async with gate:
            return await _subscribe(url, worker.token, worker.operation_id)

    connecting = time.perf_counter()
    sockets = await asyncio.gather(*(connect() for _ in range(subscribers)))
    connect_seconds = time.perf_counter() - connecting
    tag, count, interval = f"n{subscribers}r{rate}", WARMUP + EVENTS, 1 / rate
    samples: list[list[tuple[int, int]]] = [[] for _ in sockets]
    followers = [
        asyncio.create_task(_follow(ws, tag, count - 1, mine))
        for ws, mine in zip(sockets, samples, strict=True)
    ]
    server_cpu, client_cpu = _cpu_seconds(server_pid), time.process_time()
    machine_cpu, started = _machine_busy_seconds(), time.perf_counter()
    worker.start(tag, count, interval)
    loop = asyncio.get_running_loop()
    published = await loop.run_in_executor(None, worker.result)
    done, pending = await asyncio.wait(followers, timeout=DRAIN_SECONDS)
    for follower in pending:
        follower.cancel()
    broken = [follower.exception() for follower in done if follower.exception()]
    if broken:  # a socket that failed loses its events: they count as not delivered
        print(f"{len(broken)} of {subscribers} sockets failed, first: {broken[0]!r}")
    server_cpu = _cpu_seconds(server_pid) - server_cpu
    client_cpu = time.process_time() - client_cpu
    # Cores busy with anything else meanwhile: Redis and PostgreSQL serving this benchmark, and
    # whatever else runs on the machine (it disturbs the figures when it is more than a little).
    elsewhere = _machine_busy_seconds() - machine_cpu - server_cpu - client_cpu - published["cpu"]
    elsewhere_cores = elsewhere / (time.perf_counter() - started)
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    latencies = [ns for mine in samples for index, ns in mine if index >= WARMUP]
    durations = sorted(published["durations"][WARMUP:])
    return {
        "subscribers": subscribers,
        "rate": rate,
        "connect_seconds": connect_seconds,
        "delivered": len(latencies),
        "expected": EVENTS * subscribers,
        "latency": _percentiles(latencies),
        "publish_p50_ms": statistics.median(durations) * 1000,
        "server_cpu_ms_per_event": server_cpu * 1000 / count,
        "client_cpu_ms_per_event": client_cpu * 1000 / count,
        "worker_cpu_ms_per_event": published["cpu"] * 1000 / count,
        "elsewhere_cores": elsewhere_cores,
    }


async def _baseline(prefix: str) -> tuple[float, float, float]:
    """A bare group_send → receive through Redis, one process: the floor of any fan-out."""
    from channels_redis.pubsub import RedisPubSubChannelLayer

    # Configured as sfpserver/settings/channels.py configures the server's layer.
    layer = RedisPubSubChannelLayer(hosts=[REDIS_URL], prefix=prefix)
    channel = await layer.new_channel()
    await layer.group_add("bench-baseline", channel)
    await asyncio.sleep(0.2)  # let SUBSCRIBE reach Redis
    samples = []
    for index in range(WARMUP + EVENTS):
        sent = time.time_ns()
        await layer.group_send("bench-baseline", {"type": "bench.ping", "sent": sent})
        message = await layer.receive(channel)
        if index >= WARMUP:
            samples.append(time.time_ns() - message["sent"])
    await layer.group_discard("bench-baseline", channel)
    return _percentiles(samples)


def _owner_token_and_task() -> tuple[str, str]:
    from django.test import RequestFactory

    from apps.accounts.services import owner_bootstrap, session_login
    from apps.tasks.models import TaskExecution, TaskStatus, TriggerKind

    password = secrets.token_urlsafe(18)
    owner_bootstrap(email="bench@example.com", password=password)
    request = RequestFactory().post("/sfp/api/auth/admin/login")
    request.request_id = "benchmark"
    token = session_login(email="bench@example.com", password=password, request=request)
    execution = TaskExecution.objects.create(
        type="noop", data={}, status=TaskStatus.ACTIVE, task_path="benchmarks.ws_fanout",
        triggered_by_kind=TriggerKind.SCHEDULE, triggered_by_label="benchmark",
    )  # fmt: skip
    return token.access_token, execution.operation_id


def _print(baseline: tuple[float, float, float], rounds: list[dict]) -> None:
    print(f"{EVENTS} progress events per case (after {WARMUP} warm-up), one daphne process")
    print(
        f"{'case':38} {'events/s':>8} {'delivered':>15} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    )
    label = "baseline: group_send → receive (Redis)"
    delivered = f"{EVENTS}/{EVENTS}"
    print(f"{label:38} {'':>8} {delivered:>15} {baseline[0]:8.2f} {baseline[1]:8.2f} "
          f"{baseline[2]:8.2f}")  # fmt: skip
    for figures in rounds:
        n = figures["subscribers"]
        label = f"worker → {n} WebSocket subscriber{'s' if n > 1 else ''}"
        delivered = f"{figures['delivered']}/{figures['expected']}"
        p50, p99, worst = figures["latency"]
        print(f"{label:38} {figures['rate']:8.0f} {delivered:>15} {p50:8.2f} {p99:8.2f} "
              f"{worst:8.2f}")  # fmt: skip
    print(
        f"{'case':14} {'CPU ms per event: daphne':>24} {'clients':>8} {'worker':>8}"
        f" {'record_progress p50 ms':>23} {'connect s':>10} {'other cores':>12}"
    )
    for figures in rounds:
        label = f"{figures['subscribers']} @ {figures['rate']}/s"
        print(
            f"{label:14} {figures['server_cpu_ms_per_event']:24.2f}"
            f" {figures['client_cpu_ms_per_event']:8.2f} {figures['worker_cpu_ms_per_event']:8.2f}"
            f" {figures['publish_p50_ms']:23.2f} {figures['connect_seconds']:10.1f}"
            f" {figures['elsewhere_cores']:12.2f}"
        )
    print(
        "clients: the WebSocket clients in this process; connect s: to connect and subscribe all;"
        " other cores: busy elsewhere (Redis, PostgreSQL, other work on the machine)"
    )


def run() -> None:
    _raise_open_files_limit(2 * max(n for n, _ in CASES) + 256)
    with tempfile.TemporaryDirectory() as data_dir:
        env = _environment(data_dir)
        server = worker = None
        _admin(f"DROP DATABASE IF EXISTS {DATABASE_NAME} WITH (FORCE)")
        _admin(f"CREATE DATABASE {DATABASE_NAME}")
        try:
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
                cwd=ROOT, env=env, check=True,
            )  # fmt: skip
            baseline = asyncio.run(_baseline(env["SFP_CHANNEL_PREFIX"]))
            worker = Worker(env)
            server, port = _start_server(env, Path(data_dir) / "server.log")
            url = f"ws://127.0.0.1:{port}/sfp/ws"

            async def measure() -> list[dict]:
                return [await _round(url, worker, server.pid, n, rate) for n, rate in CASES]

            rounds = asyncio.run(measure())
        finally:
            if worker is not None:
                worker.stop()
            if server is not None:
                server.terminate()
                try:
                    server.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
            _admin(f"DROP DATABASE IF EXISTS {DATABASE_NAME} WITH (FORCE)")
    _print(baseline, rounds)
