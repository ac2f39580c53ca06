"""The audit log: a row per authenticated request, domain events with before/after, append-only
everywhere (ORM, admin, PostgreSQL trigger), and the owner's filtered, paginated export."""

import csv
import io
from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import AuditEvent, TeamRole
from tests.accounts.factories import (
    DEFAULT_PASSWORD,
    TeamFactory,
    access_token_for,
    app_token_for,
    make_member,
)
from tests.support.clients import bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def team():
    return TeamFactory(slug="core")


@pytest.fixture
def owner(team):
    return make_member(team, TeamRole.OWNER, email="owner@example.com")


@pytest.fixture
def owner_client(owner):
    return bearer(access_token_for(owner))


def test_every_authenticated_request_leaves_one_row(owner_client, owner):
    before = AuditEvent.objects.filter(action="request").count()
    response = owner_client.get(
        "/sfp/api/users/me", HTTP_USER_AGENT="sfp-cli/51", HTTP_X_REQUEST_ID="req-123"
    )
    assert response.status_code == 200
    rows = AuditEvent.objects.filter(action="request").order_by("-id")
    assert rows.count() == before + 1
    row = rows.first()
    assert (row.actor_email, row.actor_user_id, row.actor_role) == (owner.email, owner.pk, "owner")
    assert (row.method, row.path, row.status_code) == ("GET", "/sfp/api/users/me", 200)
    assert row.operation == "users-me"
    assert row.user_agent == "sfp-cli/51"
    assert row.request_id == "req-123"
    assert row.client_ip == "127.0.0.1"
    assert row.duration_ms >= 0


def test_denied_requests_are_audited_too_and_anonymous_ones_are_not(team):
    member = make_member(team, TeamRole.MEMBER)
    bearer(access_token_for(member)).get("/sfp/api/audit")
    row = AuditEvent.objects.filter(action="request").latest("id")
    assert (row.status_code, row.actor_role) == (403, "member")
    count = AuditEvent.objects.count()
    APIClient().get("/sfp/api/users/me")
    assert AuditEvent.objects.count() == count


def test_token_requests_name_the_token(owner):
    token, raw = app_token_for(owner)
    bearer(raw).get("/sfp/api/users/me")
    row = AuditEvent.objects.filter(action="request").latest("id")
    assert (row.actor_token_id, row.actor_role, row.actor_email) == (
        token.pk,
        "application",
        owner.email,
    )


def test_domain_events_carry_before_and_after(owner_client, team):
    member = make_member(team, TeamRole.MEMBER, email="m@example.com")
    owner_client.put(
        f"/sfp/api/teams/core/members/{member.email}/role", {"role": "owner"}, format="json"
    )
    changed = AuditEvent.objects.get(action="role.changed")
    assert changed.before == {"team": "core", "email": "m@example.com", "role": "member"}
    assert changed.after == {"team": "core", "email": "m@example.com", "role": "owner"}
    assert changed.actor_email == "owner@example.com"

    created = owner_client.post("/sfp/api/application-tokens", {"name": "ci"}, format="json").json()
    owner_client.delete(f"/sfp/api/application-tokens/{created['id']}")
    assert AuditEvent.objects.get(action="token.created").target_id == created["id"]
    assert AuditEvent.objects.get(action="token.revoked").after["status"] == "revoked"
    assert created["token"] not in str(AuditEvent.objects.get(action="token.created").after)


def test_logins_are_audited(owner):
    client = APIClient()
    client.post("/sfp/api/auth/admin/login", {"email": owner.email, "password": "x"}, format="json")
    client.post(
        "/sfp/api/auth/admin/login",
        {"email": owner.email, "password": DEFAULT_PASSWORD},
        format="json",
    )
    assert AuditEvent.objects.filter(action="login.failed", target_id=owner.email).count() == 1
    assert AuditEvent.objects.filter(action="login.succeeded", actor_email=owner.email).count() == 1


def test_rows_cannot_be_changed_or_deleted_through_the_orm(owner_client):
    owner_client.get("/sfp/api/users/me")
    row = AuditEvent.objects.latest("id")
    row.path = "/tampered"
    with pytest.raises(PermissionError):
        row.save()
    with pytest.raises(PermissionError):
        row.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=row.pk).update(path="/tampered")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE accounts_auditevent SET path = '/tampered'",
        "DELETE FROM accounts_auditevent",
    ],
)
def test_postgresql_refuses_update_and_delete(owner_client, statement):
    owner_client.get("/sfp/api/users/me")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(statement)
    assert AuditEvent.objects.exclude(path="/tampered").exists()


def test_admin_viewer_is_read_only(client, owner):
    client.login(email=owner.email, password=DEFAULT_PASSWORD)
    listing = client.get("/admin/accounts/auditevent/?action=request")
    assert listing.status_code == 200
    row = AuditEvent.objects.latest("id")
    detail = client.get(f"/admin/accounts/auditevent/{row.pk}/change/")
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    assert client.post(f"/admin/accounts/auditevent/{row.pk}/delete/").status_code == 403
    assert client.get("/admin/accounts/auditevent/add/").status_code == 403


def _seed(count: int, **fields):
    base = timezone.now() - timedelta(hours=1)
    for n in range(count):
        AuditEvent.objects.create(
            action=fields.get("action", "seed"),
            actor_email=fields.get("actor_email", "seed@example.com"),
            path=fields.get("path", f"/sfp/api/things/{n}"),
            occurred_at=base + timedelta(seconds=n // 2),  # pairs share a timestamp
        )


def test_api_filters_by_actor_action_path_and_time(owner_client):
    _seed(4, action="seed", actor_email="ci@example.com", path="/sfp/api/projects/x")
    _seed(3, action="other", actor_email="dev@example.com", path="/sfp/api/users")
    by_actor = owner_client.get("/sfp/api/audit?actor=ci@example.com").json()["items"]
    assert {e["actorEmail"] for e in by_actor} == {"ci@example.com"}
    assert len(by_actor) == 4
    by_action = owner_client.get("/sfp/api/audit?action=other").json()["items"]
    assert len(by_action) == 3
    by_path = owner_client.get("/sfp/api/audit?path=/sfp/api/projects").json()["items"]
    assert len(by_path) == 4
    future = (timezone.now() + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert owner_client.get("/sfp/api/audit", {"since": future}).json()["items"] == []
    assert owner_client.get("/sfp/api/audit?since=yesterday").status_code == 400


def test_keyset_pagination_walks_everything_once_while_rows_arrive(owner_client):
    _seed(25)
    seen, cursor = [], None
    while True:
        params = {"action": "seed", "limit": 10} | ({"cursor": cursor} if cursor else {})
        page = owner_client.get("/sfp/api/audit", params).json()
        seen += [item["id"] for item in page["items"]]
        AuditEvent.objects.create(action="seed")  # arrives mid-walk, newer than the cursor
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 25
    assert seen == sorted(seen, reverse=True)
    assert owner_client.get("/sfp/api/audit?cursor=garbage!").status_code == 400


def test_a_malformed_cursor_is_a_400_in_the_error_shape(owner_client):
    for cursor in ["garbage!", "WyJ4Il0", "WyJ5ZXN0ZXJkYXkiLCAxXQ", "WyIyMDI2LTAxLTAxIiwgMV0"]:
        response = owner_client.get("/sfp/api/audit", {"cursor": cursor})
        assert response.status_code == 400, cursor
        assert response.json()["details"] == {"cursor": ["Invalid."]}
        assert response.json()["message"] == "cursor is not valid"


def test_count_true_gives_the_exact_total(owner_client):
    _seed(12)
    page = owner_client.get("/sfp/api/audit", {"action": "seed", "limit": 5}).json()
    assert "total" not in page  # no count unless asked for
    counted = owner_client.get(
        "/sfp/api/audit", {"action": "seed", "limit": 5, "count": "true"}
    ).json()
    assert (counted["total"], len(counted["items"])) == (12, 5)
    deep = owner_client.get(
        "/sfp/api/audit",
        {"action": "seed", "limit": 5, "count": "true", "cursor": counted["nextCursor"]},
    ).json()
    assert deep["total"] == 12
    csv_page = owner_client.get("/sfp/api/audit?action=seed&format=csv&count=true")
    assert csv_page["X-Total-Count"] == "12"


def test_csv_export(owner_client):
    _seed(3)
    response = owner_client.get("/sfp/api/audit?action=seed&format=csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 3
    assert rows[0]["action"] == "seed"
    assert "actorEmail" in rows[0]


def test_only_owners_read_the_audit_log(owner):
    _, raw = app_token_for(owner)
    response = bearer(raw).get("/sfp/api/audit")
    assert response.status_code == 403
    assert response.json()["message"] == "Forbidden - Requires role: owner"
