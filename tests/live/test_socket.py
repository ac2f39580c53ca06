"""`/sfp/ws` end to end in process: authentication, subscriptions, catch-up from the database
without duplicates, then live task events from a real worker."""

import asyncio

import pytest
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from sfpserver.asgi import application
from tests.tasks.conftest import BUILD_DATA, fake_sfp, submit, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://localhost")


def socket(headers=()):
    return WebsocketCommunicator(application, "/sfp/ws", headers=[ORIGIN, *headers])


async def _next(communicator, event: str, timeout: float = 10) -> dict:
    while True:
        message = await communicator.receive_json_from(timeout=timeout)
        if message["event"] == event:
            return message


@pytest.fixture
def token(owner):
    from tests.accounts.factories import access_token_for

    return access_token_for(owner)


async def test_no_credentials_then_bad_token_closes_4401():
    communicator = socket()
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to({"action": "subscribe", "object": "tasks"})
    closed = await communicator.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": 4401}


async def test_a_bad_header_token_closes_4401():
    communicator = socket([(b"authorization", b"Bearer not-a-token")])
    await communicator.connect()
    assert (await communicator.receive_output(timeout=5))["code"] == 4401


async def test_a_foreign_origin_is_refused():
    communicator = WebsocketCommunicator(
        application, "/sfp/ws", headers=[(b"origin", b"http://evil.example")]
    )
    connected, _ = await communicator.connect()
    assert not connected


def test_catch_up_then_live_events_with_no_duplicates(owner_client, token, org, start_worker):
    start_worker()
    with override_settings(SFP_CLI_PATH=fake_sfp("success")):
        first = submit(owner_client, "build", BUILD_DATA).json()["operationId"]
        wait_for(owner_client, first)

    async def reconnect_and_catch_up():
        communicator = socket()
        await communicator.connect()
        await communicator.send_json_to({"action": "authenticate", "token": token})
        assert (await _next(communicator, "ready"))["user"] == "owner@example.com"
        await communicator.send_json_to(
            {"action": "subscribe", "object": "task", "id": first, "since": 3}
        )
        snapshot = await _next(communicator, "task.snapshot")
        log = await _next(communicator, "task.log")
        await communicator.disconnect()
        return snapshot, log

    snapshot, log = asyncio.run(reconnect_and_catch_up())
    assert snapshot["payload"]["status"] == "completed"
    seqs = [line["seq"] for line in log["payload"]["lines"]]
    assert seqs[0] == 4
    assert seqs == list(range(4, seqs[-1] + 1))


def test_live_events_reach_a_subscriber(owner_client, token, org, start_worker):
    start_worker()

    async def follow():
        communicator = socket([(b"authorization", f"Bearer {token}".encode())])
        await communicator.connect()
        await _next(communicator, "ready")
        await communicator.send_json_to({"action": "subscribe", "object": "tasks"})
        await _next(communicator, "subscribed")
        loop = asyncio.get_running_loop()
        with override_settings(SFP_CLI_PATH=fake_sfp("success")):
            response = await loop.run_in_executor(
                None, lambda: submit(owner_client, "build", BUILD_DATA)
            )
            operation_id = response.json()["operationId"]
            seen = []
            while "completed" not in seen:
                message = await _next(communicator, "task.status", timeout=30)
                if message["payload"]["operationId"] == operation_id:
                    seen.append(message["payload"]["status"])
        await communicator.disconnect()
        return seen

    assert asyncio.run(follow()) == ["active", "completed"]


async def test_unknown_actions_and_objects_get_an_error_not_a_close(token):
    communicator = socket([(b"authorization", f"Bearer {token}".encode())])
    await communicator.connect()
    await _next(communicator, "ready")
    await communicator.send_json_to({"action": "dance"})
    assert (await _next(communicator, "error"))["message"] == "Unknown action 'dance'"
    await communicator.send_json_to({"action": "subscribe", "object": "task", "id": "nope"})
    assert (await _next(communicator, "error"))["message"] == "Task nope not found"
    await communicator.disconnect()


def test_environment_lock_events(owner, owner_client, token):
    from apps.environments import locks
    from apps.environments.models import Environment
    from apps.projects.models import Project

    project = Project.objects.create(
        identifier="acme/app", remote_url="https://github.com/acme/app", platform="github"
    )
    environment = Environment.objects.create(project=project, name="UAT", category="test")

    async def follow():
        communicator = socket([(b"authorization", f"Bearer {token}".encode())])
        await communicator.connect()
        await _next(communicator, "ready")
        await communicator.send_json_to(
            {"action": "subscribe", "object": "environment", "id": str(environment.pk)}
        )
        snapshot = await _next(communicator, "environment.snapshot")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            None,
            lambda: locks.request_lock(
                holder=locks.Holder(label="qa@example.com"),
                repository="acme/app",
                resource="env:UAT",
                lease_seconds=60,
            ),
        )
        locked = await _next(communicator, "environment.lock")
        await communicator.disconnect()
        return snapshot, locked

    snapshot, locked = asyncio.run(follow())
    assert snapshot["payload"]["isLocked"] is False
    assert locked["payload"] == locked["payload"] | {
        "isLocked": True,
        "lockedBy": "qa@example.com",
        "resource": "env:UAT",
    }


def test_pipeline_gates_are_announced(owner, owner_client, token, org, start_worker):
    start_worker()

    async def follow():
        communicator = socket([(b"authorization", f"Bearer {token}".encode())])
        await communicator.connect()
        await _next(communicator, "ready")
        await communicator.send_json_to({"action": "subscribe", "object": "tasks"})
        await _next(communicator, "subscribed")
        loop = asyncio.get_running_loop()
        body = {
            "type": "release",
            "data": {
                "repository": "acme/app",
                "releaseDefinition": "r.yml",
                "targets": [org.username],
            },
        }
        with override_settings(SFP_CLI_PATH=fake_sfp("success")):
            await loop.run_in_executor(
                None, lambda: owner_client.post("/sfp/api/pipelines", body, format="json")
            )
            waiting = await _next(communicator, "pipeline.gate", timeout=30)
        await communicator.disconnect()
        return waiting

    waiting = asyncio.run(follow())
    assert waiting["payload"]["state"] == "waiting"
    assert waiting["payload"]["step"] == f"approve:{org.username}"
