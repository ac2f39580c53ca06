"""Across real processes through Redis: a worker process's events reach a WebSocket client of a
separate daphne process (channels-redis), while the API is served by a third (this test)."""

import asyncio
import json
import signal
import subprocess
import sys

import pytest
import websockets

from apps.tasks.models import TaskExecution
from tests.accounts.factories import access_token_for
from tests.support.servers import PROJECT_ROOT, running_server, shared_database_environment
from tests.tasks.conftest import submit

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_worker_process_reaches_a_socket_on_a_daphne_process(owner, owner_client):
    environment = shared_database_environment(SFP_WORKER_POLL_INTERVAL="0.05")
    token = access_token_for(owner)
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "runworker", "--pool", "standard", "--slots", "1"],
        cwd=PROJECT_ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with running_server("serve", "--skip-bootstrap", env=environment) as server:
            url = server.base_url.replace("http://", "ws://") + "/sfp/ws"

            async def follow() -> list[str]:
                async with websockets.connect(
                    url,
                    origin="http://127.0.0.1",
                    additional_headers={"Authorization": f"Bearer {token}"},
                ) as ws:
                    assert json.loads(await ws.recv())["event"] == "ready"
                    await ws.send(json.dumps({"action": "subscribe", "object": "tasks"}))
                    assert json.loads(await ws.recv())["event"] == "subscribed"
                    loop = asyncio.get_running_loop()
                    response = await loop.run_in_executor(
                        None, lambda: submit(owner_client, "noop", {"sleepSeconds": 0.3})
                    )
                    operation_id = response.json()["operationId"]
                    seen, follow.operation_id = [], operation_id
                    while "completed" not in seen:
                        message = json.loads(await asyncio.wait_for(ws.recv(), 30))
                        if (
                            message["event"] == "task.status"
                            and message["payload"]["operationId"] == operation_id
                        ):
                            seen.append(message["payload"]["status"])
                    return seen

            statuses = asyncio.run(follow())
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert statuses == ["active", "completed"]
    execution = TaskExecution.objects.get(pk=follow.operation_id)
    assert execution.worker_id.endswith(f"-{worker.pid}")  # run by the worker process, not us
