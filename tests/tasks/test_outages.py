"""Outages are weather: a Redis and a PostgreSQL that the test starts (and stops) itself, never the
machine's shared ones.

- Redis down for a few seconds: the API keeps accepting tasks (fast), a real `runworker` keeps
  running them, `/health` answers 200 "degraded" naming the channel layer, the worker's heartbeat
  says what it cannot reach; when Redis is back, publishing works again and the heartbeat heals.
- PostgreSQL restarted under a real `runworker`: its slots crash, are restarted and reported,
  and work submitted after the restart runs to completion with the same worker process.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from channels.layers import channel_layers
from django.db import connection
from django.test import override_settings

from apps.core import events
from apps.tasks.models import TaskExecution, WorkerHeartbeat
from tests.support.servers import PROJECT_ROOT, clean_environment, free_port, manage
from tests.tasks.conftest import submit

pytestmark = pytest.mark.django_db(transaction=True)


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@contextlib.contextmanager
def own_redis(port: int):
    directory = tempfile.mkdtemp(prefix="sfp-redis-")

    def start():
        return subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", directory],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    state = {"process": start()}

    def restart():
        state["process"] = start()

    _wait(lambda: _answers(port), 10, "redis to start")
    try:
        yield state, restart
    finally:
        state["process"].kill()
        state["process"].wait()
        shutil.rmtree(directory, ignore_errors=True)


def _answers(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def _db_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _runworker(env: dict, name: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "runworker", "--pool", "standard", "--slots", "2",
         "--worker-id", name, "--drain-seconds", "10"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output


def test_redis_down_costs_live_updates_not_work(owner_client, api_client):
    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": "sfp-outage"},
        }
    }
    with own_redis(port) as (redis, restart_redis), override_settings(CHANNEL_LAYERS=layers):
        channel_layers.backends.clear()
        env = clean_environment(
            DJANGO_SETTINGS_MODULE="sfpserver.settings.test",
            DATABASE_URL=_db_url(),
            REDIS_URL=redis_url,
            SFP_WORKER_POLL_INTERVAL="0.05",
            SFP_WORKER_LEASE_SECONDS="3",
        )
        worker = _runworker(env, "redis-weather")
        try:
            first = submit(owner_client, "noop", {}).json()["operationId"]
            _wait(
                lambda: TaskExecution.objects.filter(pk=first, status="completed").exists(),
                30,
                "the first task",
            )
            assert api_client.get("/health").json()["status"] == "ok"

            redis["process"].kill()  # Redis is gone
            redis["process"].wait()
            outage_started = time.monotonic()
            during, slowest = [], 0.0
            while time.monotonic() - outage_started < 5:
                began = time.monotonic()
                response = submit(owner_client, "noop", {"sleepSeconds": 0.1})
                slowest = max(slowest, time.monotonic() - began)
                assert response.status_code == 201
                during.append(response.json()["operationId"])
                time.sleep(0.2)
            health = api_client.get("/health")
            assert health.status_code == 200
            assert health.json()["status"] == "degraded"
            assert health.json()["degraded"][0] == "channelLayer"
            assert health.json()["checks"]["channelLayer"]["status"] == "down"
            _wait(
                lambda: TaskExecution.objects.filter(pk__in=during, status="completed").count()
                == len(during),
                30,
                "the tasks submitted during the outage",
            )
            beat = _wait(
                lambda: WorkerHeartbeat.objects.filter(
                    worker_id="redis-weather", components__channelLayer="down"
                ).first(),
                10,
                "the worker's heartbeat to report the channel layer down",
            )
            assert beat.slots_alive == 2
            workers = api_client.get("/health").json()["workers"]
            assert workers["status"] == "degraded"
            outage = time.monotonic() - outage_started

            restart_redis()  # back, empty (no persistence)
            _wait(lambda: _answers(port), 10, "redis to come back")
            time.sleep(events.settings.SFP_LIVE_PUBLISH_BACKOFF_SECONDS)
            after = submit(owner_client, "noop", {}).json()["operationId"]
            _wait(
                lambda: TaskExecution.objects.filter(pk=after, status="completed").exists(),
                30,
                "a task after the outage",
            )
            _wait(
                lambda: WorkerHeartbeat.objects.filter(
                    worker_id="redis-weather", components__channelLayer="up"
                ).exists(),
                15,
                "the worker's heartbeat to heal",
            )
            _wait(lambda: api_client.get("/health").json()["status"] == "ok", 10, "health ok")
            assert events.channel_layer_state() == "up"
        finally:
            output = _stop(worker)
            channel_layers.backends.clear()
    assert worker.returncode == 0, output
    assert "worker.slot_crashed" not in output
    print(
        f"Redis down {outage:.1f} s: {len(during)} tasks accepted (slowest POST {slowest:.2f} s) "
        "and completed"
    )
    assert slowest < 1.0


@contextlib.contextmanager
def own_postgres():
    """A throwaway cluster on a free port (as scripts/run-tests.sh makes one), as user postgres."""
    bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
    port = free_port()
    directory = tempfile.mkdtemp(prefix="sfp-pg-outage-")
    as_postgres = ["su", "postgres", "-c"] if os.getuid() == 0 else ["sh", "-c"]
    if os.getuid() == 0:
        shutil.chown(directory, "postgres")
    data, log = f"{directory}/data", f"{directory}/log"

    def pg_ctl(*arguments: str) -> None:
        command = f"'{bindir}/pg_ctl' -D '{data}' -l '{log}' " + " ".join(arguments)
        subprocess.run([*as_postgres, command], check=True, capture_output=True, timeout=60)

    subprocess.run(
        [*as_postgres, f"'{bindir}/initdb' -D '{data}' -U postgres -A trust"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    options = f'-o "-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off"'
    pg_ctl("-w", options, "start")
    try:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres") as admin:
            admin.autocommit = True
            admin.execute("CREATE DATABASE outage")
        yield (
            f"postgres://postgres@127.0.0.1:{port}/outage",
            (
                lambda: pg_ctl("-m", "fast", "-w", "stop"),
                lambda: pg_ctl("-w", options, "start"),
            ),
        )
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            pg_ctl("-m", "immediate", "-w", "stop")
        shutil.rmtree(directory, ignore_errors=True)


_SUBMIT = """
from django.db import connection
from django.utils import timezone
from apps.tasks.models import TaskExecution
for _ in range({count}):
    TaskExecution.objects.create(
        type="noop", task_path="apps.tasks.tasks.noop", status="pending",
        available_at=timezone.now(), triggered_by_kind="schedule", data={{"sleepSeconds": 0.2}},
    )
"""


def _statuses(url: str) -> dict[str, int]:
    with psycopg.connect(url.replace("postgres://", "postgresql://"), connect_timeout=2) as db:
        rows = db.execute("SELECT status, count(*) FROM tasks_taskexecution GROUP BY 1").fetchall()
    return dict(rows)


def test_postgresql_restart_under_a_worker_it_reconnects_and_goes_on():
    with own_postgres() as (url, (stop_database, start_database)):
        env = clean_environment(
            DJANGO_SETTINGS_MODULE="sfpserver.settings.test",
            DATABASE_URL=url,
            DATABASE_CONNECT_TIMEOUT="2",
            SFP_WORKER_POLL_INTERVAL="0.05",
            SFP_WORKER_LEASE_SECONDS="3",
        )
        migrated = manage("migrate", "--noinput", env=env, timeout=180)
        assert migrated.returncode == 0, migrated.stderr
        worker = _runworker(env, "pg-weather")
        try:
            assert manage("shell", "-c", _SUBMIT.format(count=4), env=env).returncode == 0
            _wait(lambda: _statuses(url).get("completed") == 4, 30, "the first tasks")

            outage_started = time.monotonic()
            stop_database()
            time.sleep(3)  # slots fail their claims meanwhile
            start_database()
            outage = time.monotonic() - outage_started

            result = manage("shell", "-c", _SUBMIT.format(count=4), env=env)
            assert result.returncode == 0, result.stderr
            _wait(lambda: _statuses(url).get("completed") == 8, 40, "the tasks after the restart")
            assert worker.poll() is None, "the worker died with the database"
            with psycopg.connect(url.replace("postgres://", "postgresql://")) as db:
                restarts, alive, components = _wait(
                    lambda: db.execute(
                        "SELECT slot_restarts, slots_alive, components FROM tasks_workerheartbeat "
                        "WHERE worker_id = 'pg-weather' AND slot_restarts > 0 "
                        "AND components->>'database' = 'up'"
                    ).fetchone(),
                    15,
                    "a heartbeat reporting the restarted slots",
                )
        finally:
            output = _stop(worker)
    assert "worker.slot_crashed" in output
    assert "worker.slot_restarted" in output
    assert alive == 2
    assert components["database"] == "up"
    print(f"PostgreSQL down {outage:.1f} s: {restarts} slot restarts, 8/8 tasks completed")
