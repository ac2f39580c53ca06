"""Clients for tests: a DRF client that sends a bearer token, as the CLI and CI do, and the
steps a real WebSocket client (`websockets`) takes to follow a task on `/sfp/ws`."""

import json

from rest_framework.test import APIClient


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


async def follow_task(ws, operation_id: str) -> dict:
    """On an open `/sfp/ws` connection: wait for `ready`, subscribe to the task, and return its
    snapshot (what came before it — the subscription's acknowledgement — is skipped)."""
    assert json.loads(await ws.recv())["event"] == "ready"
    await ws.send(json.dumps({"action": "subscribe", "object": "task", "id": operation_id}))
    while (message := json.loads(await ws.recv()))["event"] != "task.snapshot":
        pass
    return message
