"""`/sfp/ws` end to end in process: authentication, subscriptions, catch-up from the database
without duplicates, then live task events from a real worker."""

import asyncio

import pytest
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from apps.tasks.models import TaskExecution
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


async def _authenticated(raw_token: str) -> WebsocketCommunicator:
    """A socket authenticated by its Authorization header, past its `ready`."""
    communicator = socket([(b"authorization", f"Bearer {raw_token}".encode())])
    await communicator.connect()
    await _next(communicator, "ready")
    return communicator


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


def _task_seqs(messages: list[dict]) -> list[int]:
    """Every sequence number a client was given for a task: events, and each log line."""
    seqs = []
    for message in messages:
        if message["event"] == "task.log":
            seqs.extend(line["seq"] for line in message["payload"]["lines"])
        else:
            seqs.append(message["seq"])
    return seqs


def test_catch_up_sends_the_missed_lines_then_the_state(owner_client, token, org, start_worker):
    start_worker()
    with override_settings(SFP_CLI_PATH=fake_sfp("success")):
        first = submit(owner_client, "build", BUILD_DATA).json()["operationId"]
        wait_for(owner_client, first)
    execution = TaskExecution.objects.get(pk=first)
    stored = list(execution.log_lines.order_by("seq").values_list("seq", flat=True))

    async def reconnect_and_catch_up(since):
        communicator = socket()
        await communicator.connect()
        await communicator.send_json_to({"action": "authenticate", "token": token})
        assert (await _next(communicator, "ready"))["user"] == "owner@example.com"
        await communicator.send_json_to(
            {"action": "subscribe", "object": "task", "id": first, "since": since}
        )
        await _next(communicator, "subscribed")
        received = []
        while not received or received[-1]["event"] != "task.snapshot":
            received.append(await communicator.receive_json_from(timeout=10))
        await communicator.disconnect()
        return received

    whole = asyncio.run(reconnect_and_catch_up(0))
    assert [m["event"] for m in whole] == ["task.log", "task.snapshot"]
    assert _task_seqs(whole[:1]) == stored
    assert whole[-1]["seq"] == execution.event_seq
    assert whole[-1]["payload"]["status"] == "completed"

    since = stored[2]
    rest = asyncio.run(reconnect_and_catch_up(since))
    assert _task_seqs(rest[:-1]) == [seq for seq in stored if seq > since]
    assert rest[-1]["seq"] == execution.event_seq


def test_a_task_numbers_every_event_and_line_without_holes(owner_client, token, org, start_worker):
    """Status, progress and log lines of one task share one counter: 1, 2, 3… to the last."""
    start_worker()

    async def follow():
        communicator = await _authenticated(token)
        await communicator.send_json_to({"action": "subscribe", "object": "tasks"})
        await _next(communicator, "subscribed")
        loop = asyncio.get_running_loop()
        with override_settings(SFP_CLI_PATH=fake_sfp("success")):
            response = await loop.run_in_executor(
                None, lambda: submit(owner_client, "build", BUILD_DATA)
            )
            operation_id = response.json()["operationId"]
            mine = []
            while not mine or mine[-1].get("payload", {}).get("status") != "completed":
                message = await communicator.receive_json_from(timeout=30)
                if message["payload"]["operationId"] == operation_id:
                    mine.append(message)
        await communicator.disconnect()
        return operation_id, mine

    operation_id, mine = asyncio.run(follow())
    seqs = _task_seqs(mine)
    assert seqs == list(range(1, len(seqs) + 1))
    assert seqs[-1] == TaskExecution.objects.get(pk=operation_id).event_seq
    assert {m["event"] for m in mine} == {"task.status", "task.progress", "task.log"}


def test_reconnecting_with_the_last_seq_misses_nothing_and_repeats_nothing(
    owner_client, token, org, start_worker
):
    """Follow a slow build, drop the connection mid-way, reconnect with the last seq seen: the
    lines produced meanwhile come from the database, then the live ones, each exactly once."""
    start_worker()

    async def follow_with_a_break():
        loop = asyncio.get_running_loop()
        with override_settings(SFP_CLI_PATH=fake_sfp("slow")):
            response = await loop.run_in_executor(
                None, lambda: submit(owner_client, "build", BUILD_DATA)
            )
            operation_id = response.json()["operationId"]
            received = []

            async def session(since, stop):
                communicator = await _authenticated(token)
                subscribe = {"action": "subscribe", "object": "task", "id": operation_id}
                await communicator.send_json_to(subscribe | {"since": since})
                await _next(communicator, "subscribed")
                while True:
                    message = await communicator.receive_json_from(timeout=30)
                    received.append(message)
                    if stop(message):
                        break
                await communicator.disconnect()

            await session(0, lambda m: m["event"] == "task.log")  # the first lines, then away
            gone_at = received[-1]["seq"]
            await asyncio.sleep(1.2)  # the build goes on: ~2 more lines meanwhile
            await session(gone_at, lambda m: m["payload"].get("status") == "completed")
        return operation_id, received

    operation_id, received = asyncio.run(follow_with_a_break())
    stored = list(
        TaskExecution.objects.get(pk=operation_id)
        .log_lines.order_by("seq")
        .values_list("seq", flat=True)
    )
    lines = [
        line["seq"] for m in received if m["event"] == "task.log" for line in m["payload"]["lines"]
    ]
    assert lines == stored  # every line once, in order, across the break
    numbered = [m["seq"] for m in received if m["event"] != "task.snapshot"]
    assert numbered == sorted(set(numbered))  # each event once, in order
    assert received[-1]["seq"] == TaskExecution.objects.get(pk=operation_id).event_seq


def test_a_gap_in_a_followed_task_is_filled_from_the_database(owner, token):
    """Lines whose event never arrived (lost on the way) are re-read when the next event shows
    the gap, before that event is passed on."""
    from django.db import transaction

    from apps.tasks import lifecycle
    from apps.tasks.models import TaskLogLine, TaskStatus
    from tests.tasks.conftest import create_execution

    execution = create_execution(owner, status=TaskStatus.ACTIVE)

    async def follow():
        communicator = await _authenticated(token)
        await communicator.send_json_to(
            {"action": "subscribe", "object": "task", "id": execution.pk, "since": 0}
        )
        snapshot = await _next(communicator, "task.snapshot")

        def lose_two_lines_then_progress():
            with transaction.atomic():  # stored and numbered, but its event is lost
                last, _groups = lifecycle._reserve_event_seqs(execution.pk, 2)
                TaskLogLine.objects.bulk_create(
                    TaskLogLine(execution=execution, seq=seq, logged_at=execution.created_at,
                                message=f"lost {seq}")
                    for seq in (last - 1, last)
                )  # fmt: skip
            lifecycle.record_progress(execution.pk, progress=40, step="After the gap")

        await asyncio.get_running_loop().run_in_executor(None, lose_two_lines_then_progress)
        after = [await communicator.receive_json_from(timeout=10) for _ in range(2)]
        await communicator.disconnect()
        return snapshot, after

    from prometheus_client import REGISTRY

    resyncs_before = REGISTRY.get_sample_value("sfp_live_resyncs_total") or 0.0
    snapshot, (recovered, state) = asyncio.run(follow())
    assert REGISTRY.get_sample_value("sfp_live_resyncs_total") == resyncs_before + 1
    assert snapshot["seq"] == 0
    assert recovered["event"] == "task.log"
    assert [line["message"] for line in recovered["payload"]["lines"]] == ["lost 1", "lost 2"]
    assert state["event"] == "task.snapshot"  # re-read after the gap: already at seq 3
    assert state["seq"] == 3
    assert state["payload"] | {"progress": 40, "currentStep": "After the gap"} == state["payload"]


def test_an_event_reaching_two_subscriptions_is_sent_once(owner, token):
    from apps.tasks import lifecycle
    from apps.tasks.models import TaskStatus
    from tests.tasks.conftest import create_execution

    execution = create_execution(owner, status=TaskStatus.ACTIVE)

    async def follow():
        communicator = await _authenticated(token)
        await communicator.send_json_to({"action": "subscribe", "object": "tasks"})
        await _next(communicator, "subscribed")
        await communicator.send_json_to({"action": "subscribe", "object": "me"})
        await _next(communicator, "subscribed")
        await communicator.send_json_to(
            {"action": "subscribe", "object": "task", "id": execution.pk}
        )
        await _next(communicator, "task.snapshot")
        loop = asyncio.get_running_loop()
        for progress in (10, 20, 30):
            await loop.run_in_executor(
                None, lambda p=progress: lifecycle.record_progress(execution.pk, progress=p)
            )
        received = [await communicator.receive_json_from(timeout=10) for _ in range(3)]
        assert await communicator.receive_nothing(timeout=0.5)
        await communicator.disconnect()
        return received

    received = asyncio.run(follow())
    assert [(m["seq"], m["payload"]["progress"]) for m in received] == [(1, 10), (2, 20), (3, 30)]


def test_my_feed_carries_my_tasks_and_for_owners_the_gates(
    owner, member, token, owner_client, member_client
):
    from apps.tasks import lifecycle
    from apps.tasks.models import TaskStatus
    from tests.accounts.factories import access_token_for
    from tests.tasks.conftest import create_execution

    mine = create_execution(owner, status=TaskStatus.ACTIVE)
    theirs = create_execution(member, status=TaskStatus.ACTIVE)
    member_token = access_token_for(member)

    async def feed_of(raw_token):
        communicator = await _authenticated(raw_token)
        await communicator.send_json_to({"action": "subscribe", "object": "me"})
        await _next(communicator, "subscribed")
        return communicator

    async def run():
        owner_feed, member_feed = await feed_of(token), await feed_of(member_token)
        loop = asyncio.get_running_loop()
        for execution in (mine, theirs):
            await loop.run_in_executor(
                None, lambda e=execution: lifecycle.record_progress(e.pk, progress=50)
            )
        await loop.run_in_executor(
            None,
            lambda: lifecycle.publish_task_event(
                theirs.pk, "pipeline.gate", {"step": "approve", "state": "waiting"},
                extra_groups=("gates",),
            ),
        )  # fmt: skip
        owner_saw = [await owner_feed.receive_json_from(timeout=10) for _ in range(2)]
        member_saw = [await member_feed.receive_json_from(timeout=10) for _ in range(2)]
        assert await owner_feed.receive_nothing(timeout=0.3)
        assert await member_feed.receive_nothing(timeout=0.3)
        await owner_feed.disconnect()
        await member_feed.disconnect()
        return owner_saw, member_saw

    owner_saw, member_saw = asyncio.run(run())
    assert [(m["event"], m["payload"]["operationId"]) for m in owner_saw] == [
        ("task.progress", mine.pk),
        ("pipeline.gate", theirs.pk),  # owners decide gates, whoever started the pipeline
    ]
    assert [(m["event"], m["payload"]["operationId"]) for m in member_saw] == [
        ("task.progress", theirs.pk),
        ("pipeline.gate", theirs.pk),  # the member's own pipeline
    ]


def test_live_events_reach_a_subscriber(owner_client, token, org, start_worker):
    start_worker()

    async def follow():
        communicator = await _authenticated(token)
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
    communicator = await _authenticated(token)
    await communicator.send_json_to({"action": "dance"})
    assert (await _next(communicator, "error"))["message"] == "Unknown action 'dance'"
    await communicator.send_json_to({"action": "subscribe", "object": "task", "id": "nope"})
    assert (await _next(communicator, "error"))["message"] == "Task nope not found"
    await communicator.disconnect()


def test_environment_lock_events(owner, owner_client, token):
    from apps.environments.models import Environment
    from apps.environments.services import locks
    from apps.projects.models import Project

    project = Project.objects.create(
        identifier="acme/app", remote_url="https://github.com/acme/app", platform="github"
    )
    environment = Environment.objects.create(project=project, name="UAT", category="test")

    async def follow():
        communicator = await _authenticated(token)
        await communicator.send_json_to(
            {"action": "subscribe", "object": "environment", "id": str(environment.pk)}
        )
        snapshot = await _next(communicator, "environment.snapshot")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            None,
            lambda: locks.lock_request(
                holder=locks.Holder(key="test:" + "qa@example.com", label="qa@example.com"),
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
    assert (snapshot["seq"], locked["seq"]) == (0, 1)  # the resource's own counter
    assert (locked["payload"]["isLocked"], locked["payload"]["resource"]) == (True, "env:UAT")
    assert locked["payload"]["currentLock"]["lockedBy"] == "qa@example.com"
    # One lock payload: the snapshot is the update's shape plus the environment's id and name.
    assert set(snapshot["payload"]) - {"environmentId", "name"} == set(locked["payload"])


def test_pipeline_gates_are_announced(owner, owner_client, token, org, start_worker):
    start_worker()

    async def follow():
        communicator = await _authenticated(token)
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


@override_settings(CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}})
def test_the_embedded_in_memory_layer_delivers_from_worker_threads_at_once(owner, token):
    """The embedded default: a worker thread's event is sent from the loop serving the socket
    (the in-memory layer is not thread-safe), and arrives without waiting for other traffic."""
    import threading
    import time

    from apps.tasks import lifecycle
    from apps.tasks.models import TaskStatus
    from tests.tasks.conftest import create_execution

    execution = create_execution(owner, status=TaskStatus.ACTIVE)

    async def follow():
        communicator = await _authenticated(token)
        await communicator.send_json_to(
            {"action": "subscribe", "object": "task", "id": execution.pk}
        )
        await _next(communicator, "task.snapshot")
        latencies = []
        for progress in (10, 20, 30):
            worker = threading.Thread(
                target=lifecycle.record_progress,
                args=(execution.pk,),
                kwargs={"progress": progress},
            )
            started = time.monotonic()
            worker.start()
            message = await _next(communicator, "task.progress", timeout=5)
            latencies.append(time.monotonic() - started)
            assert message["payload"]["progress"] == progress
            await asyncio.get_running_loop().run_in_executor(None, worker.join)
        await communicator.disconnect()
        return latencies

    assert max(asyncio.run(follow())) < 0.5  # no waiting for an unrelated wake-up of the loop


def test_the_locks_feed_carries_every_resources_lock_events(owner, token):
    from apps.environments.services import locks

    async def follow():
        communicator = await _authenticated(token)
        await communicator.send_json_to({"action": "subscribe", "object": "locks"})
        await _next(communicator, "subscribed")
        loop = asyncio.get_running_loop()
        for repository in ("acme/app", "acme/web"):
            await loop.run_in_executor(
                None,
                lambda r=repository: locks.lock_request(
                    holder=locks.Holder(key="test:" + "qa@example.com", label="qa@example.com"), repository=r,
                    resource="env:UAT", lease_seconds=60,
                ),
            )  # fmt: skip
        received = [await _next(communicator, "environment.lock") for _ in range(2)]
        await communicator.disconnect()
        return received

    received = asyncio.run(follow())
    assert [(m["payload"]["repository"], m["seq"]) for m in received] == [
        ("acme/app", 1),
        ("acme/web", 1),
    ]


def test_the_live_layer_is_measured_on_metrics(owner, token, client):
    from prometheus_client import REGISTRY

    from apps.tasks import lifecycle
    from apps.tasks.models import TaskStatus
    from tests.tasks.conftest import create_execution

    def sample(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    execution = create_execution(owner, status=TaskStatus.ACTIVE)
    before = {
        "published": sample("sfp_live_events_published_total", event="task.progress"),
        "sent": sample("sfp_live_events_sent_total", event="task.progress"),
        "dropped": sample("sfp_live_duplicates_dropped_total"),
        "open": sample("sfp_live_sockets_open"),
    }

    async def follow():
        communicator = await _authenticated(token)
        for subscription in ({"object": "tasks"}, {"object": "task", "id": execution.pk}):
            await communicator.send_json_to({"action": "subscribe"} | subscription)
            await _next(communicator, "subscribed")
        open_while_connected = sample("sfp_live_sockets_open")
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: lifecycle.record_progress(execution.pk, progress=10)
        )
        await _next(communicator, "task.progress")
        assert await communicator.receive_nothing(timeout=0.3)  # the second copy was dropped
        await communicator.disconnect()
        return open_while_connected

    open_while_connected = asyncio.run(follow())
    assert open_while_connected == before["open"] + 1
    assert sample("sfp_live_sockets_open") == before["open"]
    assert (
        sample("sfp_live_events_published_total", event="task.progress") == before["published"] + 1
    )
    assert sample("sfp_live_events_sent_total", event="task.progress") == before["sent"] + 1
    assert sample("sfp_live_duplicates_dropped_total") == before["dropped"] + 1
    exported = client.get("/metrics").content.decode()
    assert "sfp_live_sockets_open" in exported and "sfp_live_resyncs_total" in exported


@override_settings(SFP_LIVE_RECHECK_SECONDS=0.2)
def test_a_socket_closes_when_its_token_is_revoked_or_its_role_is_gone(owner, member):
    from apps.accounts.models import Membership
    from apps.accounts.principal import principal_for_user
    from apps.accounts.services import app_token_revoke
    from tests.accounts.factories import access_token_for, app_token_for

    app_token, raw_app_token = app_token_for(owner)
    member_token = access_token_for(member)

    async def run():
        by_token, by_member = (
            await _authenticated(raw_app_token),
            await _authenticated(member_token),
        )
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            None,
            lambda: app_token_revoke(actor=principal_for_user(owner), token_id=app_token.pk),
        )
        await loop.run_in_executor(None, lambda: Membership.objects.filter(user=member).delete())
        return (
            await by_token.receive_output(timeout=5),
            await by_member.receive_output(timeout=5),
        )

    revoked, removed = asyncio.run(run())
    assert revoked == {"type": "websocket.close", "code": 4401}  # as the API: token revoked
    assert removed == {"type": "websocket.close", "code": 4403}  # as the API: no role left


def test_a_submission_names_its_live_channel_and_that_message_follows_it(
    owner_client, token, org, start_worker
):
    start_worker()
    with override_settings(SFP_CLI_PATH=fake_sfp("success")):
        body = submit(owner_client, "build", BUILD_DATA).json()
        wait_for(owner_client, body["operationId"])
    assert body["live"]["url"] == "/sfp/ws"

    async def follow_as_told():
        communicator = WebsocketCommunicator(
            application,
            body["live"]["url"],
            headers=[ORIGIN, (b"authorization", f"Bearer {token}".encode())],
        )
        await communicator.connect()
        await _next(communicator, "ready")
        await communicator.send_json_to(body["live"]["subscribe"])  # verbatim
        log = await _next(communicator, "task.log")
        snapshot = await _next(communicator, "task.snapshot")
        await communicator.disconnect()
        return log, snapshot

    log, snapshot = asyncio.run(follow_as_told())
    assert log["payload"]["lines"][0]["seq"] >= 1  # the whole log, from the start
    assert snapshot["payload"]["status"] == "completed"


@override_settings(SFP_LIVE_RECHECK_SECONDS=0.2)
def test_a_dashboard_socket_closes_when_its_session_ends(owner):
    from django.test import Client

    browser = Client()
    browser.force_login(owner)
    cookie = f"sessionid={browser.cookies['sessionid'].value}".encode()

    async def run():
        communicator = socket([(b"cookie", cookie)])
        await communicator.connect()
        assert (await _next(communicator, "ready"))["user"] == "owner@example.com"
        await asyncio.get_running_loop().run_in_executor(None, browser.logout)
        return await communicator.receive_output(timeout=5)

    assert asyncio.run(run()) == {"type": "websocket.close", "code": 4401}
