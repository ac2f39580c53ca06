"""The lock queue as CI uses it: one ticket per request whoever asks (a shared token, tokens
sharing a name, one user in two sessions, an owner beside a token), release and extend by ticket
only, explicit idempotency, pure reads, any free one of a set, typos as errors, and hand-off
woken by the database, not by polling."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.models import TeamRole
from apps.environments import handoff
from apps.environments.models import Environment, LockRequest, LockStatus, LockTicket
from apps.environments.selectors import environments as environment_reads
from apps.environments.selectors import locks as lock_reads
from apps.environments.services import locks
from apps.projects.models import Project
from tests.accounts.factories import TeamFactory, access_token_for, app_token_for, make_member
from tests.support.clients import bearer

REPO = "acme/app"


@pytest.fixture
def team():
    return TeamFactory()


@pytest.fixture
def project():
    project = Project.objects.create(
        identifier=REPO, remote_url="https://github.com/acme/app.git", platform="github"
    )
    for name in ["uat", "sit1", "sit2", "sit3"]:
        Environment.objects.create(project=project, name=name, category="test")
    return project


@pytest.fixture
def owner(team):
    return make_member(team, TeamRole.OWNER, email="owner@example.com")


@pytest.fixture
def owner_client(owner, project):
    return bearer(access_token_for(owner))


@pytest.fixture
def app_client(owner, project):
    return bearer(app_token_for(owner)[1])


def queue(client, resource="uat", lease=600, repository=REPO, **extra):
    body = {"repository": repository, "leaseDurationSeconds": lease}
    if "resources" not in extra:
        body["resource"] = resource
    return client.post("/sfp/api/locks", body | extra, format="json")


def status_of(ticket_id) -> str:
    return LockTicket.objects.get(ticket_id=ticket_id).status


def concurrently(count: int, call) -> list:
    """Run `call(n)` in `count` threads released at once, each on its own connection."""
    barrier, results, errors = threading.Barrier(count), [None] * count, []

    def run(n: int) -> None:
        try:
            barrier.wait()
            results[n] = call(n)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


# --- one request, one ticket ------------------------------------------------------------------


@pytest.mark.django_db
def test_three_requests_by_one_token_are_acquired_queued_queued_and_hand_off(app_client):
    first, second, third = (queue(app_client).json() for _ in range(3))
    assert [first["status"], second["status"], third["status"]] == [
        "acquired",
        "queued",
        "queued",
    ]
    assert len({first["ticketId"], second["ticketId"], third["ticketId"]}) == 3
    assert (second["queuePosition"], third["queuePosition"]) == (1, 2)
    released = app_client.delete(f"/sfp/api/locks/acme/app/uat/{first['ticketId']}")
    assert released.json()["message"] == "Lock released successfully"
    assert status_of(second["ticketId"]) == "acquired"
    assert status_of(third["ticketId"]) == "queued"
    listing = app_client.get("/sfp/api/locks/acme%2Fapp/uat").json()
    assert [(t["ticketId"], t["status"], t["queuePosition"]) for t in listing] == [
        (first["ticketId"], "released", -1),
        (second["ticketId"], "acquired", 0),
        (third["ticketId"], "queued", 1),
    ]


def _clients_for(scenario: str, team, owner) -> list:
    if scenario == "shared token":
        raw = app_token_for(owner)[1]
        return [bearer(raw) for _ in range(4)]
    if scenario == "tokens sharing a name":
        return [bearer(app_token_for(owner)[1]) for _ in range(4)]  # every one is named "ci"
    if scenario == "one user in two sessions":
        member = make_member(team, TeamRole.OWNER, email="twice@example.com")
        return [bearer(access_token_for(member)) for _ in range(2)] * 2
    if scenario == "owner beside a token":
        return [bearer(access_token_for(owner)), bearer(app_token_for(owner)[1])] * 2
    raise AssertionError(scenario)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "scenario",
    ["shared token", "tokens sharing a name", "one user in two sessions", "owner beside a token"],
)
def test_concurrent_callers_sharing_an_identity_get_a_ticket_each(scenario, team, owner, project):
    """4 requests at once (real threads, each its own connection): 4 tickets, one holder; a
    release of ticket A hands on to the next and never touches any other ticket."""
    clients = _clients_for(scenario, team, owner)
    answers = concurrently(4, lambda n: queue(clients[n]).json())
    tickets = [a["ticketId"] for a in answers]
    assert len(set(tickets)) == 4, answers
    assert sorted(a["status"] for a in answers) == ["acquired", "queued", "queued", "queued"]

    by_status = {t: status_of(t) for t in tickets}
    holder = next(t for t, s in by_status.items() if s == "acquired")
    holder_client = clients[tickets.index(holder)]
    waiting = LockTicket.objects.filter(ticket_id__in=tickets, status="queued").order_by("id")
    next_in_line, *rest = [str(t.ticket_id) for t in waiting]

    assert holder_client.delete(f"/sfp/api/locks/acme/app/uat/{holder}").status_code == 200
    assert status_of(holder) == "released"
    assert status_of(next_in_line) == "acquired"
    assert [status_of(t) for t in rest] == ["queued", "queued"]
    # Releasing the released ticket again changes nobody else's.
    assert holder_client.delete(f"/sfp/api/locks/acme/app/uat/{holder}").status_code == 200
    assert status_of(next_in_line) == "acquired"


@pytest.mark.django_db
def test_a_member_releases_and_extends_only_tickets_of_its_own_session(team, project):
    member = make_member(team, TeamRole.MEMBER, email="dev@example.com")
    first_session, second_session = (
        bearer(access_token_for(member)),
        bearer(access_token_for(member)),
    )
    uat = Environment.objects.get(name="uat")
    held = first_session.post(f"/sfp/api/environments/{uat.pk}/lock", {}, format="json").json()
    url = f"/sfp/api/locks/acme/app/uat/{held['ticketId']}"
    refused = second_session.delete(url)
    assert refused.status_code == 403
    assert refused.json()["message"] == "Forbidden - Requires role: lock holder, owner, application"
    extend = {"leaseDurationSeconds": 60}
    assert second_session.post(f"{url}/extend", extend, format="json").status_code == 403
    assert status_of(held["ticketId"]) == "acquired"
    extended = first_session.post(f"{url}/extend", {"leaseDurationSeconds": 7200}, format="json")
    assert extended.status_code == 200
    assert extended.json()["expiresInSeconds"] > 7000
    assert first_session.delete(url).json()["status"] == "released"


@pytest.mark.django_db
def test_an_expired_lease_cannot_be_extended(app_client):
    held = queue(app_client, lease=60).json()
    LockTicket.objects.filter(ticket_id=held["ticketId"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    url = f"/sfp/api/locks/acme/app/uat/{held['ticketId']}/extend"
    answer = app_client.post(url, {"leaseDurationSeconds": 60}, format="json")
    assert answer.status_code == 409
    assert answer.json()["message"].endswith("is expired, not acquired: nothing to extend")
    assert status_of(held["ticketId"]) == "expired"  # the write applied the lapse


# --- idempotency ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_idempotency_key_returns_the_ticket_the_caller_already_has(owner, app_client):
    first = queue(app_client, idempotencyKey="job-42").json()
    again = queue(app_client, idempotencyKey="job-42").json()
    header = app_client.post(
        "/sfp/api/locks",
        {"repository": REPO, "resource": "uat", "leaseDurationSeconds": 600},
        format="json",
        headers={"Idempotency-Key": "job-42"},
    ).json()
    assert first["ticketId"] == again["ticketId"] == header["ticketId"]
    other_caller = bearer(app_token_for(owner)[1])
    assert queue(other_caller, idempotencyKey="job-42").json()["ticketId"] != first["ticketId"]
    elsewhere = queue(app_client, resource="sit1", idempotencyKey="job-42")
    assert elsewhere.status_code == 409
    assert elsewhere.json()["message"] == "Idempotency key already used for a lock on env:uat"
    assert LockTicket.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_key_get_one_ticket(owner, project):
    raw = app_token_for(owner)[1]
    answers = concurrently(4, lambda n: queue(bearer(raw), idempotencyKey="retry").json())
    assert len({a["ticketId"] for a in answers}) == 1
    assert LockTicket.objects.count() == 1


@pytest.mark.django_db
def test_a_task_keeps_its_ticket_across_its_retries(project):
    task = locks.Holder.task("op-1")
    first = locks.lock_request(holder=task, repository=REPO, resource="env:uat", lease_seconds=60)
    again = locks.lock_request(holder=task, repository=REPO, resource="env:uat", lease_seconds=60)
    assert first.ticket_id == again.ticket_id
    other = locks.lock_request(
        holder=locks.Holder.task("op-2"), repository=REPO, resource="env:uat", lease_seconds=60
    )
    assert other.status == "queued"
    assert locks.locks_release_for_operation("op-1") == 1
    assert status_of(other.ticket_id) == "acquired"


# --- reads are reads ---------------------------------------------------------------------------


def _writes(queries) -> list[str]:
    verbs = ("INSERT", "UPDATE", "DELETE", "SELECT PG_NOTIFY")
    return [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(verbs)]


@pytest.mark.django_db
def test_reads_never_write_even_over_a_lapsed_lease(app_client, owner_client):
    held = queue(app_client, lease=60).json()
    waiting = queue(owner_client).json()
    LockTicket.objects.filter(ticket_id=held["ticketId"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    environments = environment_reads.environments_filtered(repository=REPO)
    with CaptureQueriesContext(connection) as queries:
        ticket = lock_reads.lock_ticket_get(
            repository=REPO, resource="env:uat", ticket_id=held["ticketId"]
        )
        lapsed = lock_reads.ticket_dto(ticket)
        listing = lock_reads.tickets_dto(
            lock_reads.lock_tickets_for(repository=REPO, resource="env:uat")
        )
        state = lock_reads.lock_state(REPO, "env:uat")
        states = environment_reads.environment_lock_states(environments)
        lock_reads.current_holder(repository=REPO, resource="env:uat")
    assert _writes(queries.captured_queries) == []
    assert lapsed["status"] == "expired" and lapsed["queuePosition"] == -1
    assert [t["status"] for t in listing] == ["expired", "queued"]
    assert state["isLocked"] is False and state["queuedLocks"][0]["ticketId"] == waiting["ticketId"]
    assert len(states) == 4
    # Over HTTP, only the audit row is written.
    with CaptureQueriesContext(connection) as queries:
        app_client.get(f"/sfp/api/locks/acme/app/uat/{held['ticketId']}")
        app_client.get("/sfp/api/locks/acme/app/uat")
        app_client.get("/sfp/api/environments?repositoryIdentifier=acme/app")
    assert [q for q in _writes(queries.captured_queries) if "environments_" in q] == []
    assert status_of(held["ticketId"]) == "acquired"  # rows untouched by the reads

    assert locks.locks_expire_due() == 1  # the scheduled pass applies it
    assert status_of(held["ticketId"]) == "expired"
    assert status_of(waiting["ticketId"]) == "acquired"


@pytest.mark.django_db
def test_a_write_on_the_resource_applies_a_lapsed_lease(app_client, owner_client):
    held = queue(app_client, lease=60).json()
    LockTicket.objects.filter(ticket_id=held["ticketId"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert queue(owner_client).json()["status"] == "acquired"
    assert status_of(held["ticketId"]) == "expired"


# --- any free one of a set --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_any_of_a_set_is_granted_the_first_free_else_the_first_to_free_up(app_client, owner_client):
    queue(owner_client, resource="sit1")
    free = queue(app_client, resources=["sit1", "sit2", "sit3"]).json()
    assert (free["status"], free["grantedResource"]) == ("acquired", "env:sit2")
    assert len(free["tickets"]) == 1  # nothing queued where it is not needed
    queue(owner_client, resource="sit3")

    waiting = queue(app_client, resources=["sit1", "sit2", "sit3"]).json()
    assert (waiting["status"], waiting["grantedResource"]) == ("queued", None)
    assert [t["status"] for t in waiting["tickets"]] == ["queued"] * 3
    sit3_holder = LockTicket.objects.get(resource_row__resource="env:sit3", status="acquired")
    owner_client.delete(f"/sfp/api/locks/acme/app/sit3/{sit3_holder.ticket_id}")

    granted = app_client.get(f"/sfp/api/locks/requests/{waiting['requestId']}").json()
    assert (granted["status"], granted["grantedResource"]) == ("acquired", "env:sit3")
    assert sorted(t["status"] for t in granted["tickets"]) == ["acquired", "cancelled", "cancelled"]
    # Its other tickets were dropped from their queues right after (the tidy pass).
    assert (
        LockTicket.objects.filter(lock_request__request_id=waiting["requestId"])
        .filter(status="queued")
        .count()
        == 0
    )
    ended = app_client.delete(f"/sfp/api/locks/requests/{waiting['requestId']}").json()
    assert ended["status"] == "released"


@pytest.mark.django_db
def test_waiting_requests_on_one_set_are_served_first_in_first_out(app_client):
    for name in ["sit1", "sit2", "sit3"]:
        queue(app_client, resource=name)
    waiters = [queue(app_client, resources=["sit1", "sit2", "sit3"]).json() for _ in range(6)]
    granted_order = []
    for _ in range(6):
        holder = LockTicket.objects.filter(status="acquired").order_by("lease_start", "id").first()
        locks.lock_release(
            repository=REPO, resource=holder.resource_row.resource, ticket_id=holder.ticket_id,
            holder=locks.Holder(key=holder.holder_key, label="test"),
        )  # fmt: skip
        for waiter in waiters:
            request = LockRequest.objects.get(request_id=waiter["requestId"])
            if request.granted_ticket_id and waiter["requestId"] not in granted_order:
                granted_order.append(waiter["requestId"])
    assert granted_order == [w["requestId"] for w in waiters]


@pytest.mark.django_db(transaction=True)
def test_fifty_contenders_for_any_of_ten_never_get_two_grants(project):
    names = [f"pool{n}" for n in range(10)]
    for name in names:
        Environment.objects.create(project=project, name=name, category="dev")
    resources = [f"env:{name}" for name in names]

    def contend(n: int) -> str:
        holder = locks.Holder(key=f"test:job-{n}", label=f"job-{n}")
        request = locks.lock_request_any(
            holder=holder, repository=REPO, resources=resources, lease_seconds=600
        )
        request = locks.lock_request_wait(request=request, seconds=30)
        assert request.granted_ticket_id, f"job-{n} was never granted"
        ticket = request.granted_ticket
        time.sleep(0.005)
        locks.lock_release(
            repository=REPO, resource=ticket.resource_row.resource, ticket_id=ticket.ticket_id,
            holder=holder,
        )  # fmt: skip
        return str(request.request_id)

    served = concurrently(50, contend)
    assert len(set(served)) == 50
    for request in LockRequest.objects.all():
        held_ever = request.tickets.filter(status__in=["acquired", "released", "expired"])
        assert held_ever.count() == 1, request  # never two grants to one request
    assert LockTicket.objects.filter(status__in=["queued", "acquired"]).count() == 0


# --- environments: the published lock, waiting on the database --------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_environment_lock_wait_answers_as_soon_as_it_is_handed_over(owner, project):
    uat = Environment.objects.get(name="uat")
    holder_client, waiter_client = bearer(app_token_for(owner)[1]), bearer(app_token_for(owner)[1])
    held = holder_client.post(
        f"/sfp/api/environments/{uat.pk}/lock", {"authType": "none"}, format="json"
    ).json()

    def release_soon() -> None:
        time.sleep(0.5)
        holder_client.post(
            f"/sfp/api/environments/{uat.pk}/unlock", {"ticketId": held["ticketId"]}, format="json"
        )
        connection.close()

    releaser = threading.Thread(target=release_soon)
    started = time.monotonic()
    releaser.start()
    with CaptureQueriesContext(connection) as queries:
        answer = waiter_client.post(
            f"/sfp/api/environments/{uat.pk}/lock",
            {"wait": True, "waitTimeoutSeconds": 20, "authType": "none", "durationMinutes": 5},
            format="json",
        ).json()
    elapsed = time.monotonic() - started
    releaser.join()
    assert answer["status"] == "acquired"
    assert set(answer) >= {
        "ticketId", "status", "environmentId", "environmentName", "duration",
        "salesforceUsername",
    }  # fmt: skip
    assert (answer["environmentName"], answer["duration"]) == ("uat", 5)
    assert 0.5 <= elapsed < 1.5, elapsed
    ticket_reads = [q for q in queries.captured_queries if "environments_lockticket" in q["sql"]]
    assert len(ticket_reads) < 12, len(ticket_reads)  # woken once, not a 0.2 s poll loop


@pytest.mark.django_db(transaction=True)
def test_a_wait_that_times_out_answers_queued(owner, project):
    uat = Environment.objects.get(name="uat")
    client = bearer(app_token_for(owner)[1])
    client.post(f"/sfp/api/environments/{uat.pk}/lock", {"authType": "none"}, format="json")
    started = time.monotonic()
    answer = client.post(
        f"/sfp/api/environments/{uat.pk}/lock",
        {"wait": True, "waitTimeoutSeconds": 1},
        format="json",
    ).json()
    assert 1 <= time.monotonic() - started < 2
    assert answer["status"] == "queued" and "accessToken" not in answer


@pytest.mark.django_db(transaction=True)
def test_a_waiter_takes_over_when_the_holders_lease_runs_out(owner, project):
    uat = Environment.objects.get(name="uat")
    holder = locks.Holder(key="test:short", label="short")
    locks.lock_request(holder=holder, repository=REPO, resource="env:uat", lease_seconds=1)
    client = bearer(app_token_for(owner)[1])
    answer = client.post(
        f"/sfp/api/environments/{uat.pk}/lock",
        {"wait": True, "waitTimeoutSeconds": 10, "authType": "none"},
        format="json",
    ).json()
    assert answer["status"] == "acquired"
    assert LockTicket.objects.get(holder_key="test:short").status == "expired"


@pytest.mark.django_db(transaction=True)
def test_the_listener_reconnects_and_a_later_hand_off_still_wakes_its_waiter(project):
    first = locks.lock_request(
        holder=locks.Holder(key="test:a", label="a"), repository=REPO, resource="env:uat",
        lease_seconds=60,
    )  # fmt: skip
    waiting = locks.lock_request(
        holder=locks.Holder(key="test:b", label="b"), repository=REPO, resource="env:uat",
        lease_seconds=60,
    )  # fmt: skip
    with handoff.subscription([waiting.ticket_id]):
        assert handoff.listening()
        with connection.cursor() as cursor:  # PostgreSQL drops the listener's connection
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE %s AND pid <> pg_backend_pid()",
                [f"LISTEN {handoff.HANDOFF_CHANNEL}%"],
            )
        deadline = time.monotonic() + 5
        while handoff.listening() and time.monotonic() < deadline:
            time.sleep(0.01)
        deadline = time.monotonic() + 5
        while not handoff.listening() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert handoff.listening(), "the listener did not come back"

    def release_from_another_thread() -> None:
        time.sleep(0.2)
        locks.lock_release(
            repository=REPO, resource="env:uat", ticket_id=first.ticket_id,
            holder=locks.Holder(key="test:a", label="a"),
        )  # fmt: skip
        connection.close()

    releaser = threading.Thread(target=release_from_another_thread)
    started = time.monotonic()
    releaser.start()
    acquired = locks.lock_wait(ticket=waiting, seconds=5)
    releaser.join()
    assert acquired.status == "acquired"
    assert time.monotonic() - started < 1.0


@pytest.mark.django_db
def test_credentials_go_only_to_the_holder_and_only_once_acquired(owner, project):
    uat = Environment.objects.get(name="uat")
    first_session, second_session = bearer(access_token_for(owner)), bearer(access_token_for(owner))
    held = first_session.post(
        f"/sfp/api/environments/{uat.pk}/lock", {"authType": "none"}, format="json"
    ).json()
    queued = second_session.post(f"/sfp/api/environments/{uat.pk}/lock", {}, format="json").json()
    assert queued["status"] == "queued" and "accessToken" not in queued
    refused = second_session.get(
        f"/sfp/api/environments/{uat.pk}/credentials?ticketId={held['ticketId']}"
    )
    assert refused.status_code == 403
    assert (
        refused.json()["message"] == "Credentials go only to the holder of the environment's lock"
    )


@pytest.mark.django_db
def test_lock_any_of_an_environment_category(app_client, owner_client):
    queue(owner_client, resource="uat")
    answer = app_client.post(
        "/sfp/api/environments/lock-any",
        {"repositoryIdentifier": REPO, "category": "test", "authType": "none"},
        format="json",
    ).json()
    assert answer["status"] == "acquired"
    assert answer["candidates"] == ["sit1", "sit2", "sit3", "uat"]
    assert answer["environmentName"] == "sit1"
    unknown = app_client.post(
        "/sfp/api/environments/lock-any",
        {"repositoryIdentifier": REPO, "names": ["sit1", "nope"]},
        format="json",
    )
    assert unknown.status_code == 404
    assert unknown.json()["message"] == "Environment nope not found in acme/app"


# --- typos are errors -------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("repository", "resource", "status", "message"),
    [
        ("acme/ap", "uat", 404, "Project acme/ap not found"),
        (REPO, "uta", 404, "Environment uta not found in acme/app"),
        (REPO, "env:uta", 404, "Environment uta not found in acme/app"),
        (REPO, "slot:1", 400, None),
        (REPO, "custom:", 400, "Name the free-form resource after 'custom:'"),
    ],
)
def test_typos_are_errors_that_name_the_mistake(app_client, repository, resource, status, message):
    answer = queue(app_client, resource=resource, repository=repository)
    assert answer.status_code == status
    if message:
        assert answer.json()["message"] == message
    assert not LockTicket.objects.exists()


@pytest.mark.django_db
def test_free_form_resources_use_the_custom_prefix(app_client):
    answer = queue(app_client, resource="custom:build-slot").json()
    assert (answer["status"], answer["resource"]) == ("acquired", "custom:build-slot")
    assert queue(app_client, resource="env:uat").json()["resource"] == "env:uat"
    assert queue(app_client, resource="uat").json()["status"] == "queued"  # the same resource


@pytest.mark.django_db
@pytest.mark.parametrize("lease", [0, 24 * 3600 + 1])
def test_lease_bounds(app_client, lease):
    assert queue(app_client, lease=lease).status_code == 400
    assert not LockTicket.objects.exists()


@pytest.mark.django_db
def test_unknown_tickets_and_requests_are_404(app_client):
    missing = app_client.get("/sfp/api/locks/acme/app/uat/00000000-0000-0000-0000-000000000000")
    assert (missing.status_code, missing.json()["message"]) == (404, "Lock not found")
    request = app_client.get("/sfp/api/locks/requests/00000000-0000-0000-0000-000000000000")
    assert request.status_code == 404


# --- the database's own guarantees ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_database_refuses_a_second_holder(project):
    from django.db import IntegrityError

    first = locks.lock_request(
        holder=locks.Holder(key="test:a", label="a"), repository=REPO, resource="env:uat",
        lease_seconds=60,
    )  # fmt: skip
    with pytest.raises(IntegrityError):
        LockTicket.objects.create(
            resource_row=first.resource_row, ticket_id="00000000-0000-0000-0000-000000000009",
            status=LockStatus.ACQUIRED, lease_duration_seconds=60,
        )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_a_deadlock_victim_is_retried(project):
    """Two writes lock two rows in opposite orders: PostgreSQL aborts one; it runs again."""
    from apps.environments.models import LockResource

    a, _ = LockResource.objects.get_or_create(repository=REPO, resource="custom:a")
    b, _ = LockResource.objects.get_or_create(repository=REPO, resource="custom:b")
    barrier, runs = threading.Barrier(2), []

    def crossing(first, second):
        def write():
            runs.append(first.resource)
            LockResource.objects.select_for_update().get(pk=first.pk)
            if len(runs) <= 2:
                barrier.wait(timeout=5)
            LockResource.objects.select_for_update().get(pk=second.pk)
            return first.resource

        return write

    results = concurrently(
        2, lambda n: locks._retrying(crossing(a, b) if n == 0 else crossing(b, a))
    )
    assert sorted(results) == ["custom:a", "custom:b"]
    assert len(runs) == 3  # one of the two ran twice


@pytest.mark.django_db
def test_the_lock_board_force_releases_and_audits(client, app_client, owner_client, team):
    from apps.accounts.models import AuditEvent
    from tests.accounts.factories import DEFAULT_PASSWORD

    held = queue(app_client).json()
    waiting = queue(owner_client).json()
    console_owner = make_member(team, TeamRole.OWNER, email="console@example.com")
    client.login(email=console_owner.email, password=DEFAULT_PASSWORD)
    board = client.get("/admin/environments/lockticket/")
    assert board.status_code == 200
    assert b"acme/app:env:uat" in board.content
    pk = LockTicket.objects.get(ticket_id=held["ticketId"]).pk
    client.post(
        "/admin/environments/lockticket/", {"action": "force_release", "_selected_action": [pk]}
    )
    assert status_of(held["ticketId"]) == LockStatus.RELEASED
    assert status_of(waiting["ticketId"]) == LockStatus.ACQUIRED
    assert AuditEvent.objects.filter(
        action="lock.force_released", actor_email="console@example.com"
    ).exists()


def test_other_apps_read_lock_state_through_selectors_not_models():
    """The lock models are the environments app's own: live, dashboard and tasks go through its
    selectors and services (ADR 0006)."""
    from pathlib import Path

    apps_dir = Path(__file__).resolve().parents[2] / "apps"
    offenders = [
        str(path.relative_to(apps_dir))
        for path in apps_dir.rglob("*.py")
        if path.parts[len(apps_dir.parts)] != "environments"
        and any(name in path.read_text() for name in ("LockTicket", "LockResource", "LockRequest"))
    ]
    assert offenders == []


@pytest.mark.django_db(transaction=True)  # observed when the grant or release commits
def test_lock_wait_and_hold_times_show_on_metrics(app_client, api_client):
    from prometheus_client.parser import text_string_to_metric_families

    def counts() -> dict[str, float]:
        text = api_client.get("/metrics").content.decode()
        return {
            sample.name: sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name in {"sfp_lock_wait_seconds_count", "sfp_lock_hold_seconds_count"}
            and sample.labels.get("resource") == "env:sit3"
        }

    before = counts()
    first, _second = (queue(app_client, resource="sit3").json() for _ in range(2))
    app_client.delete(f"/sfp/api/locks/acme/app/sit3/{first['ticketId']}")
    after = counts()
    waited = after["sfp_lock_wait_seconds_count"] - before.get("sfp_lock_wait_seconds_count", 0)
    held = after["sfp_lock_hold_seconds_count"] - before.get("sfp_lock_hold_seconds_count", 0)
    assert (waited, held) == (2, 1)  # both granted (one at once, one at hand-off), one released
