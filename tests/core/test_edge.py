"""The production edge, for real: Debian's Caddy running deploy/Caddyfile unchanged in front of
gunicorn (the WSGI API workers) and daphne (the WebSockets), both on this run's PostgreSQL database
and Redis. Requests reach gunicorn, `/sfp/ws` reaches daphne, an event caused by an API request
in a gunicorn worker reaches a socket on daphne, and a stopped upstream shows the maintenance page.
"""

import asyncio
import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import websockets

from apps.accounts.models import TeamRole
from apps.tasks.models import TaskStatus
from tests.accounts.factories import TeamFactory, access_token_for, make_member
from tests.support.clients import follow_task
from tests.support.servers import (
    PROJECT_ROOT,
    free_port,
    running_command,
    running_server,
    shared_database_environment,
)
from tests.tasks.conftest import create_execution

pytestmark = pytest.mark.django_db(transaction=True)


def _get(url: str, token: str | None = None):
    """(status, headers — case-insensitive, as Caddy canonicalises names —, body)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=15) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def _delete(url: str, token: str) -> int:
    request = urllib.request.Request(
        url, method="DELETE", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        return response.status


def _ping_count(metrics: str) -> float:
    """django-prometheus' count of ping requests answered, from a /metrics page."""
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("django_http_responses_total_by_status_view_method_total{") and (
            'view="ping"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _eventually(condition, timeout: float = 10) -> bool:
    """Output is read by a thread: give it a moment to catch up."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _caddy(edge_port: int, api_port: int, server_port: int, home) -> subprocess.Popen:
    caddy = shutil.which("caddy")
    assert caddy, "Caddy is needed here: .ci/run installs Debian's caddy package"
    environment = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "XDG_DATA_HOME": str(home),
        "XDG_CONFIG_HOME": str(home),
        "SFP_DOMAIN": f"http://127.0.0.1:{edge_port}",
        "SFP_API_UPSTREAM": f"127.0.0.1:{api_port}",
        "SFP_SERVER_UPSTREAM": f"127.0.0.1:{server_port}",
        "SFP_MAINTENANCE_ROOT": str(PROJECT_ROOT / "deploy"),
        "CADDY_ADMIN": "off",
    }
    process = subprocess.Popen(
        [caddy, "run", "--config", str(PROJECT_ROOT / "deploy" / "Caddyfile"),
         "--adapter", "caddyfile"],
        env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{edge_port}/health", timeout=2)
            return process
        except urllib.error.HTTPError:
            return process  # Caddy answers (whatever the upstream said)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("Caddy did not start")


def test_caddy_sends_http_to_gunicorn_and_websockets_to_daphne(tmp_path):
    owner = make_member(TeamFactory(), TeamRole.OWNER, email="owner@example.com")
    token = access_token_for(owner)
    execution = create_execution(owner, status=TaskStatus.PENDING)
    environment = shared_database_environment(LOG_LEVEL="INFO", LOG_FORMAT="json")
    api_port, edge_port = free_port(), free_port()
    gunicorn = [
        sys.executable, "-m", "gunicorn",
        "--config", str(PROJECT_ROOT / "deploy" / "gunicorn.conf.py"), "sfpserver.wsgi:application",
    ]  # fmt: skip
    api_environment = environment | {
        "SFP_API_BIND": f"127.0.0.1:{api_port}",
        "SFP_API_WORKERS": "2",
        "SFP_API_THREADS": "4",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    with (
        running_server("serve", "--skip-bootstrap", env=environment) as daphne,
        running_command(gunicorn, port=api_port, env=api_environment) as api,
    ):
        server_port = int(daphne.base_url.rsplit(":", 1)[1])
        caddy = _caddy(edge_port, api_port, server_port, tmp_path)
        edge = f"http://127.0.0.1:{edge_port}"
        try:
            status, headers, body = _get(f"{edge}/sfp/api/ping")
            assert (status, body) == (200, b"pong")
            request_id = headers.get("X-Request-ID")  # Caddy's, kept by the server
            assert request_id
            assert _eventually(lambda: request_id in api.read_output())  # gunicorn answered it,
            assert request_id not in daphne.read_output()  # not daphne

            async def cancel_and_watch() -> dict:
                async with websockets.connect(
                    f"ws://127.0.0.1:{edge_port}/sfp/ws",
                    origin=f"http://127.0.0.1:{edge_port}",
                    additional_headers={"Authorization": f"Bearer {token}"},
                ) as ws:
                    await follow_task(ws, execution.pk)
                    loop = asyncio.get_running_loop()
                    cancel = f"{edge}/sfp/api/tasks/{execution.pk}"
                    assert await loop.run_in_executor(None, _delete, cancel, token) == 200
                    while True:
                        message = json.loads(await asyncio.wait_for(ws.recv(), 15))
                        if message["event"] == "task.status":
                            return message

            status_event = asyncio.run(cancel_and_watch())
            assert status_event["payload"]["status"] == "cancelled"

            # /metrics sums both workers, whichever of them answers: 80 pings from 8 threads
            # land on both workers, and every read of /metrics counts all of them.
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(lambda _: _get(f"{edge}/sfp/api/ping"), range(80)))
            counts = [_ping_count(_get(f"{edge}/metrics")[2].decode()) for _ in range(6)]
            assert all(count >= 80 for count in counts), counts
            assert len(list((tmp_path / "metrics").glob("counter_*.db"))) >= 2  # both workers

            api.process.terminate()
            api.process.wait(timeout=15)
            status, _, body = _get(f"{edge}/sfp/api/ping")
            assert status == 503
            assert b"sfp server is restarting" in body
        finally:
            caddy.terminate()
            caddy.wait(timeout=15)
