"""`/sfp/ws` at its edges, as scripts and fuzzers meet it: the Origin rule for bearer clients,
the authentication deadline, malformed and oversized frames, and the per-connection rate limit."""

import asyncio

import pytest
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from sfpserver.asgi import application
from tests.accounts.factories import access_token_for
from tests.live.test_socket import ORIGIN, _next
from tests.tasks.conftest import create_execution

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def token(owner):
    return access_token_for(owner)


def _bearer(token: str) -> tuple[bytes, bytes]:
    return (b"authorization", f"Bearer {token}".encode())


async def _connected(*headers) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/sfp/ws", headers=list(headers))
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def test_a_bearer_client_without_origin_is_accepted(token):
    communicator = await _connected(_bearer(token))
    assert "owner" in (await _next(communicator, "ready"))["roles"]
    await communicator.disconnect()


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([], id="no origin, no token"),
        pytest.param([(b"authorization", b"Bearer ")], id="no origin, empty bearer"),
        pytest.param([(b"origin", b"http://evil.example"), "bearer"], id="foreign origin + token"),
    ],
)
async def test_without_a_bearer_token_the_origin_rule_stands(token, headers):
    headers = [_bearer(token) if header == "bearer" else header for header in headers]
    communicator = WebsocketCommunicator(application, "/sfp/ws", headers=headers)
    connected, _ = await communicator.connect()
    assert not connected


async def test_a_bad_bearer_token_without_origin_closes_4401():
    communicator = await _connected((b"authorization", b"Bearer not-a-token"))
    assert await communicator.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": 4401,
    }


@override_settings(SFP_LIVE_AUTH_SECONDS=0.3)
async def test_a_socket_that_never_authenticates_is_closed_4401():
    communicator = await _connected(ORIGIN)
    assert await communicator.receive_output(timeout=3) == {
        "type": "websocket.close",
        "code": 4401,
    }


@override_settings(SFP_LIVE_AUTH_SECONDS=0.3)
async def test_authenticating_by_message_in_time_keeps_the_socket_open(token):
    communicator = await _connected(ORIGIN)
    await communicator.send_json_to({"action": "authenticate", "token": token})
    await _next(communicator, "ready")
    assert await communicator.receive_nothing(timeout=0.6)  # past the deadline: still open
    await communicator.send_json_to({"action": "subscribe", "object": "tasks"})
    assert (await communicator.receive_json_from(timeout=5))["event"] == "subscribed"
    await communicator.disconnect()


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        pytest.param({"text_data": "not json"}, "Frames must be JSON", id="not json"),
        pytest.param({"text_data": "[" * 50_000}, "Frames must be JSON", id="nested too deep"),
        pytest.param({"text_data": " " * 70_000}, "Frame over 65536 characters", id="huge"),
        pytest.param({"bytes_data": b"\x00\x01"}, "Send JSON text frames", id="binary"),
        pytest.param({"text_data": "[1, 2]"}, "Send JSON objects", id="not an object"),
        pytest.param({"text_data": '{"action": 5}'}, "Unknown action 5", id="action not a string"),
        pytest.param(
            {"text_data": '{"action": "subscribe", "object": "task", "id": 7}'},
            "object must be task",
            id="id not a string",
        ),
        pytest.param(
            {"text_data": '{"action": "subscribe", "object": ["task"]}'},
            "object must be task",
            id="object not a string",
        ),
        pytest.param(
            {"text_data": '{"action": "unsubscribe", "object": "environment"}'},
            "object must be task",
            id="unsubscribe without id",
        ),
    ],
)
async def test_a_malformed_frame_gets_an_error_and_the_socket_stays_open(
    token, owner, frame, message
):
    execution = await create_execution_async(owner)
    communicator = await _connected(_bearer(token))
    await _next(communicator, "ready")
    await communicator.send_to(**frame)
    error = await communicator.receive_json_from(timeout=5)
    assert error["event"] == "error"
    assert error["message"].startswith(message)
    await communicator.send_json_to(
        {"action": "subscribe", "object": "task", "id": execution.operation_id}
    )
    assert (await communicator.receive_json_from(timeout=5))["event"] == "subscribed"
    await communicator.disconnect()


async def test_a_since_of_the_wrong_type_gets_an_error(token, owner):
    execution = await create_execution_async(owner)
    communicator = await _connected(_bearer(token))
    await _next(communicator, "ready")
    await communicator.send_json_to(
        {"action": "subscribe", "object": "task", "id": execution.operation_id, "since": "0"}
    )
    assert await communicator.receive_json_from(timeout=5) == {
        "event": "error",
        "message": "since must be an integer",
    }
    await communicator.disconnect()


@override_settings(SFP_LIVE_FRAMES_PER_SECOND=1, SFP_LIVE_FRAME_BURST=3)
async def test_frames_over_the_rate_get_an_error_then_persistent_abuse_closes_4429(token):
    communicator = await _connected(_bearer(token))
    await _next(communicator, "ready")
    for _ in range(3):  # the burst
        await communicator.send_json_to({"action": "subscribe", "object": "tasks"})
        assert (await communicator.receive_json_from(timeout=5))["event"] == "subscribed"
    refused = []
    for _ in range(3):  # refused, up to the burst: an error each, and the socket stays open
        await communicator.send_json_to({"action": "subscribe", "object": "tasks"})
        refused.append(await communicator.receive_json_from(timeout=5))
    assert refused == [{"event": "error", "message": "Too many frames: at most 1 per second"}] * 3
    await communicator.send_json_to({"action": "subscribe", "object": "tasks"})
    assert await communicator.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": 4429,
    }


@override_settings(SFP_LIVE_FRAMES_PER_SECOND=2, SFP_LIVE_FRAME_BURST=2)
async def test_a_client_that_slows_down_is_forgiven(token):
    communicator = await _connected(_bearer(token))
    await _next(communicator, "ready")
    for _ in range(2):  # over the limit twice, with a pause between long enough to refill
        for _ in range(4):
            await communicator.send_json_to({"action": "subscribe", "object": "tasks"})
        events = [(await communicator.receive_json_from(timeout=5))["event"] for _ in range(4)]
        assert "error" in events
        await asyncio.sleep(1.2)
    # 4 refused in all, more than the burst, but the count started over once the bucket filled.
    await communicator.send_json_to({"action": "subscribe", "object": "tasks"})
    assert (await communicator.receive_json_from(timeout=5))["event"] == "subscribed"
    await communicator.disconnect()


async def create_execution_async(owner):
    from channels.db import database_sync_to_async

    return await database_sync_to_async(create_execution)(owner, status="active")
