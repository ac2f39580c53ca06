"""Live clients resync when Redis returns: a daphne server on a Redis this test starts, kills and
starts again. A task changes while Redis is down (its event is lost); once Redis is back, the
socket gets the task's current state from the database without any new event, and live events
published after the restart reach it again (it is back in its groups)."""

import asyncio
import json

import pytest
import websockets
from channels_redis.pubsub import RedisPubSubChannelLayer

from apps.core.events import group_name
from apps.tasks.lifecycle import record_progress
from apps.tasks.models import TaskExecution
from tests.accounts.factories import access_token_for
from tests.support.servers import free_port, running_server, shared_database_environment
from tests.tasks.conftest import create_execution
from tests.tasks.test_outages import _answers, _wait, own_redis

pytestmark = pytest.mark.django_db(transaction=True)

PREFIX = "sfplivesync"


async def _next_about(ws, operation_id: str, timeout: float) -> dict:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if message.get("payload", {}).get("operationId") == operation_id:
            return message


def test_a_socket_resyncs_its_task_when_redis_comes_back(owner):
    port = free_port()
    token = access_token_for(owner)
    execution = create_execution(owner, status="active")
    operation_id = execution.operation_id
    with own_redis(port) as (redis, restart):
        environment = shared_database_environment(
            SFP_LIVE_PROBE_SECONDS="0.3", SFP_CHANNEL_PREFIX=PREFIX
        )
        environment["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        with running_server("serve", "--skip-bootstrap", env=environment) as server:
            url = server.base_url.replace("http://", "ws://") + "/sfp/ws"

            async def follow() -> tuple[dict, dict, dict]:
                loop = asyncio.get_running_loop()
                headers = {"Authorization": f"Bearer {token}"}
                async with websockets.connect(url, additional_headers=headers) as ws:
                    assert json.loads(await ws.recv())["event"] == "ready"
                    subscribe = {"action": "subscribe", "object": "task", "id": operation_id}
                    await ws.send(json.dumps(subscribe))
                    before = await _next_about(ws, operation_id, 10)

                    redis["process"].kill()
                    redis["process"].wait()
                    await asyncio.sleep(1.0)  # the server's watch sees the layer unreachable
                    # Its event goes nowhere the server listens: lost, as in an outage.
                    await loop.run_in_executor(
                        None, lambda: record_progress(operation_id, progress=42, step="outage")
                    )
                    restart()
                    await loop.run_in_executor(None, _wait, lambda: _answers(port), 10, "redis")
                    healed = await _next_about(ws, operation_id, 15)

                    # A live event after the restart, published on the server's Redis.
                    seq = await loop.run_in_executor(None, _progress_seq, operation_id)
                    layer = RedisPubSubChannelLayer(hosts=[environment["REDIS_URL"]], prefix=PREFIX)
                    message = {
                        "type": "sfp.event", "event": "task.progress", "seq": seq,
                        "payload": {"operationId": operation_id, "progress": 43,
                                    "currentStep": None},
                    }  # fmt: skip
                    await layer.group_send(group_name(f"task.{operation_id}"), message)
                    after = await _next_about(ws, operation_id, 10)
                    await layer.flush()
                    return before, healed, after

            before, healed, after = asyncio.run(follow())
    assert before["event"] == "task.snapshot"
    assert healed["event"] == "task.snapshot"
    assert healed["seq"] > before["seq"]
    assert healed["payload"]["progress"] == 42
    assert healed["payload"]["currentStep"] == "outage"
    assert (after["event"], after["payload"]["progress"]) == ("task.progress", 43)
    assert after["seq"] == healed["seq"] + 1


def _progress_seq(operation_id: str) -> int:
    """The next number of the task's counter, reserved as a worker's progress event would."""
    from django.db.models import F

    TaskExecution.objects.filter(pk=operation_id).update(event_seq=F("event_seq") + 1)
    return TaskExecution.objects.get(pk=operation_id).event_seq
