"""Task events reach channel-layer subscribers as they happen: status changes, progress and
batches of log lines, for the execution's own group and the `tasks` feed."""

import asyncio
import threading

import pytest
from channels.layers import get_channel_layer
from django.test import override_settings

from tests.tasks.conftest import BUILD_DATA, fake_sfp, submit, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_subscriber_sees_status_progress_and_log_lines(owner_client, org, start_worker):
    layer = get_channel_layer()
    received: list[dict] = []
    subscribed = threading.Event()
    done = threading.Event()

    async def listen() -> None:
        channel = await layer.new_channel()
        await layer.group_add("tasks", channel)
        subscribed.set()
        while not done.is_set():
            try:
                received.append(await asyncio.wait_for(layer.receive(channel), 0.2))
            except TimeoutError:
                continue

    listener = threading.Thread(target=lambda: asyncio.run(listen()), daemon=True)
    listener.start()
    assert subscribed.wait(10)
    start_worker()
    with override_settings(SFP_CLI_PATH=fake_sfp("success")):
        operation_id = submit(owner_client, "build", BUILD_DATA).json()["operationId"]
        wait_for(owner_client, operation_id)
    deadline = threading.Event()
    deadline.wait(1.0)  # the last batch is sent right after the final status
    done.set()
    listener.join(timeout=5)

    mine = [m for m in received if m["payload"]["operationId"] == operation_id]
    statuses = [m["payload"]["status"] for m in mine if m["event"] == "task.status"]
    assert statuses == ["active", "completed"]
    progress = [m["payload"]["progress"] for m in mine if m["event"] == "task.progress"]
    assert 100 in progress or 75 in progress
    lines = [
        line["message"] for m in mine if m["event"] == "task.log" for line in m["payload"]["lines"]
    ]
    assert "[4/4] Processing integrations" in lines
    seqs = [line["seq"] for m in mine if m["event"] == "task.log" for line in m["payload"]["lines"]]
    assert seqs == sorted(seqs)
