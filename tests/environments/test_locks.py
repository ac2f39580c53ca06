"""The lock queue over the API and under concurrency: FIFO tickets, one holder, automatic
hand-off on release and on lease expiry, the published roles."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.accounts.models import TeamRole
from apps.environments import locks
from apps.environments.models import LockStatus, LockTicket
from tests.accounts.factories import TeamFactory, access_token_for, app_token_for, make_member
from tests.support.clients import bearer


@pytest.fixture
def team():
    return TeamFactory()


@pytest.fixture
def owner_client(team):
    return bearer(access_token_for(make_member(team, TeamRole.OWNER, email="owner@example.com")))


@pytest.fixture
def app_client(team):
    return bearer(app_token_for(make_member(team, TeamRole.OWNER))[1])


@pytest.fixture
def member_client(team):
    return bearer(access_token_for(make_member(team, TeamRole.MEMBER)))


def queue(client, resource="uat", lease=600, repository="acme/app"):
    return client.post(
        "/sfp/api/locks",
        {"repository": repository, "resource": resource, "leaseDurationSeconds": lease},
        format="json",
    )


@pytest.mark.django_db
def test_first_acquires_next_queues_release_hands_off(owner_client, app_client):
    first = queue(owner_client).json()
    second = queue(app_client).json()
    assert (first["status"], first["queuePosition"]) == ("acquired", 0)
    assert (second["status"], second["queuePosition"]) == ("queued", 1)
    assert first["expiresInSeconds"] > 590

    status = app_client.get(f"/sfp/api/locks/acme%2Fapp/uat/{second['ticketId']}").json()
    assert status["status"] == "queued"
    released = owner_client.delete(f"/sfp/api/locks/acme/app/uat/{first['ticketId']}")
    assert released.json()["message"] == "Lock released successfully"
    now_held = app_client.get(f"/sfp/api/locks/acme/app/uat/{second['ticketId']}").json()
    assert (now_held["status"], now_held["queuePosition"]) == ("acquired", 0)

    listing = owner_client.get("/sfp/api/locks/acme/app/uat").json()
    assert [(t["ticketId"], t["status"]) for t in listing] == [
        (first["ticketId"], "released"),
        (second["ticketId"], "acquired"),
    ]


@pytest.mark.django_db
def test_releasing_a_queued_ticket_cancels_it(owner_client, app_client):
    queue(owner_client)
    waiting = queue(app_client).json()
    cancelled = app_client.delete(f"/sfp/api/locks/acme/app/uat/{waiting['ticketId']}").json()
    assert cancelled["status"] == "cancelled"


@pytest.mark.django_db
def test_only_holders_owners_and_tokens_release(owner_client, member_client, team):
    held = queue(owner_client).json()
    denied = member_client.delete(f"/sfp/api/locks/acme/app/uat/{held['ticketId']}")
    assert denied.status_code == 403
    assert denied.json()["message"] == "Forbidden - Requires role: lock holder, owner, application"
    assert member_client.post("/sfp/api/locks", {}, format="json").status_code == 403
    assert member_client.get(f"/sfp/api/locks/acme/app/uat/{held['ticketId']}").status_code == 200


@pytest.mark.django_db
def test_asking_again_returns_the_ticket_you_have(owner_client):
    first = queue(owner_client).json()
    assert queue(owner_client).json()["ticketId"] == first["ticketId"]


@pytest.mark.django_db
def test_a_lapsed_lease_hands_the_lock_on_without_anyone_polling(owner_client, app_client):
    held = queue(owner_client, lease=60).json()
    waiting = queue(app_client).json()
    LockTicket.objects.filter(ticket_id=held["ticketId"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert locks.expire_due() == 1  # what every worker's tick does
    assert LockTicket.objects.get(ticket_id=held["ticketId"]).status == LockStatus.EXPIRED
    assert LockTicket.objects.get(ticket_id=waiting["ticketId"]).status == LockStatus.ACQUIRED


@pytest.mark.django_db
@pytest.mark.parametrize("lease", [0, 24 * 3600 + 1])
def test_lease_bounds(owner_client, lease):
    assert queue(owner_client, lease=lease).status_code == 400
    assert not LockTicket.objects.exists()


@pytest.mark.django_db
def test_unknown_tickets_are_404(owner_client):
    missing = owner_client.get("/sfp/api/locks/acme/app/uat/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert missing.json()["message"] == "Lock not found"


@pytest.mark.django_db(transaction=True)
def test_many_concurrent_requesters_get_one_holder_and_strict_fifo():
    """40 threads, each with its own database connection, queue on one resource at once; then
    each holder releases in turn. Never two holders; acquisition order == ticket order."""
    contenders = 40
    barrier = threading.Barrier(contenders)
    tickets: list[LockTicket] = []
    errors: list[BaseException] = []

    def contend(n: int) -> None:
        try:
            barrier.wait()
            ticket = locks.request_lock(
                holder=locks.Holder(label=f"worker-{n}"), repository="acme/app", resource="prod",
                lease_seconds=600,
            )  # fmt: skip
            tickets.append(ticket)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert LockTicket.objects.filter(status=LockStatus.ACQUIRED).count() == 1
    assert LockTicket.objects.filter(status=LockStatus.QUEUED).count() == contenders - 1

    acquisition_order = []
    for _ in range(contenders):
        holder = LockTicket.objects.get(status=LockStatus.ACQUIRED)
        acquisition_order.append(holder.id)
        locks.release(
            repository="acme/app", resource="prod", ticket_id=holder.ticket_id,
            holder=locks.Holder(label=holder.holder_label), released_by="test",
        )  # fmt: skip
        assert LockTicket.objects.filter(status=LockStatus.ACQUIRED).count() <= 1
    assert acquisition_order == sorted(acquisition_order)
    assert LockTicket.objects.filter(status=LockStatus.RELEASED).count() == contenders


@pytest.mark.django_db(transaction=True)
def test_the_database_refuses_a_second_holder():
    from django.db import IntegrityError

    first = locks.request_lock(
        holder=locks.Holder(label="a"), repository="r/x", resource="y", lease_seconds=60
    )
    with pytest.raises(IntegrityError):
        LockTicket.objects.create(
            resource_row=first.resource_row, ticket_id="00000000-0000-0000-0000-000000000009",
            status=LockStatus.ACQUIRED, lease_duration_seconds=60,
        )  # fmt: skip


@pytest.mark.django_db
def test_the_lock_board_force_releases_and_audits(client, owner_client, app_client, team):
    from apps.accounts.models import AuditEvent
    from tests.accounts.factories import DEFAULT_PASSWORD

    held = queue(app_client).json()
    waiting = queue(owner_client).json()
    console_owner = make_member(team, TeamRole.OWNER, email="console@example.com")
    client.login(email=console_owner.email, password=DEFAULT_PASSWORD)
    board = client.get("/admin/environments/lockticket/")
    assert board.status_code == 200
    assert b"acme/app:uat" in board.content
    pk = LockTicket.objects.get(ticket_id=held["ticketId"]).pk
    client.post(
        "/admin/environments/lockticket/", {"action": "force_release", "_selected_action": [pk]}
    )
    assert LockTicket.objects.get(ticket_id=held["ticketId"]).status == LockStatus.RELEASED
    assert LockTicket.objects.get(ticket_id=waiting["ticketId"]).status == LockStatus.ACQUIRED
    assert AuditEvent.objects.filter(
        action="lock.force_released", actor_email="console@example.com"
    ).exists()
