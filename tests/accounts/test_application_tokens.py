"""Application tokens: shown once, stored as a hash, listed, revoked at once, capped by the
creator's current role."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.accounts.models import ApplicationToken, TeamRole
from tests.accounts.factories import TeamFactory, access_token_for, app_token_for, make_member
from tests.support.clients import bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def team():
    return TeamFactory()


@pytest.fixture
def owner(team):
    return make_member(team, TeamRole.OWNER, email="owner@example.com")


@pytest.fixture
def owner_client(owner):
    return bearer(access_token_for(owner))


def test_create_returns_the_token_once_and_stores_only_a_hash(owner_client):
    response = owner_client.post("/sfp/api/application-tokens", {"name": "ci"}, format="json")
    assert response.status_code == 201
    body = response.json()
    raw = body["token"]
    assert raw.startswith("sfp_app_")
    assert len(raw) > 40
    assert body["status"] == "active"
    assert body["last4"] == raw[-4:]
    assert body["id"].startswith("tok_")
    created = timezone.now()
    expires = timezone.datetime.fromisoformat(body["expiresAt"])
    assert abs((expires - created) - timedelta(days=30)) < timedelta(minutes=1)

    stored = ApplicationToken.objects.get(pk=body["id"])
    assert raw not in stored.token_hash
    listing = owner_client.get("/sfp/api/application-tokens").json()
    assert [t["id"] for t in listing] == [body["id"]]
    assert "token" not in listing[0]
    assert raw not in str(listing)


def test_no_token_plaintext_anywhere_in_the_database(owner_client, api_client, owner):
    app_raw = owner_client.post(
        "/sfp/api/application-tokens", {"name": "ci"}, format="json"
    ).json()["token"]
    session = api_client.post(
        "/sfp/api/auth/admin/login",
        {"email": owner.email, "password": "correct-horse-battery-staple"},
        format="json",
    ).json()
    bearer(app_raw).get("/sfp/api/users/me")  # used once, so it is in the audit log's reach
    secrets = [app_raw, session["refresh_token"], session["access_token"]]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
        tables = [row[0] for row in cursor.fetchall()]
        for table in tables:
            cursor.execute(f'SELECT t::text FROM "{table}" t')  # noqa: S608 - catalogue names
            dump = "\n".join(row[0] for row in cursor.fetchall())
            for secret in secrets:
                assert secret not in dump, f"a token's plaintext is stored in {table}"
    assert len(tables) > 10


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "expiresIn": 0}, "expiresIn"),
        ({"name": "x", "expiresIn": 366}, "expiresIn"),
        ({"name": "x", "expiresIn": "soon"}, "expiresIn"),
        ({"expiresIn": 5}, "name"),
    ],
)
def test_create_validates(owner_client, body, field):
    response = owner_client.post("/sfp/api/application-tokens", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["details"]
    assert not ApplicationToken.objects.exists()


def test_token_works_and_records_last_use(owner_client):
    body = owner_client.post("/sfp/api/application-tokens", {"name": "ci"}, format="json").json()
    me = bearer(body["token"]).get("/sfp/api/users/me")
    assert me.status_code == 200
    assert me.json()["role"] == "application"
    assert me.json()["tokenId"] == body["id"]
    assert ApplicationToken.objects.get(pk=body["id"]).last_used_at is not None


def test_revoke_is_immediate(owner_client):
    body = owner_client.post("/sfp/api/application-tokens", {"name": "ci"}, format="json").json()
    client = bearer(body["token"])
    assert client.get("/sfp/api/users/me").status_code == 200
    revoked = owner_client.delete(f"/sfp/api/application-tokens/{body['id']}")
    assert revoked.status_code == 200
    assert revoked.json()["token"]["status"] == "revoked"
    response = client.get("/sfp/api/users/me")
    assert response.status_code == 401
    assert response.json()["message"] == "Application token revoked"


def test_revoking_an_unknown_token_is_404(owner_client):
    response = owner_client.delete("/sfp/api/application-tokens/tok_nope")
    assert response.status_code == 404


def test_expired_token_is_401_without_grace(owner, owner_client):
    token, raw = app_token_for(owner)
    ApplicationToken.objects.filter(pk=token.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = bearer(raw).get("/sfp/api/users/me")
    assert response.status_code == 401
    assert response.json()["message"] == "Application token expired"
    assert owner_client.get("/sfp/api/application-tokens").json()[0]["status"] == "expired"


def test_tokens_cannot_manage_tokens(owner):
    _, raw = app_token_for(owner)
    response = bearer(raw).post("/sfp/api/application-tokens", {"name": "x"}, format="json")
    assert response.status_code == 403
    assert response.json()["message"] == "Forbidden - Requires role: owner"


def test_token_follows_its_creator_down(team, owner):
    second_owner = make_member(team, TeamRole.OWNER)
    _, raw = app_token_for(owner)
    client = bearer(raw)
    assert client.get(f"/sfp/api/teams/{team.slug}/members").status_code == 200

    owner.memberships.update(role=TeamRole.MEMBER)  # demoted: the token is capped at member
    assert client.get("/sfp/api/users/me").json()["role"] == "member"
    owner.memberships.all().delete()  # removed: no role left
    denied = client.get("/sfp/api/users/me")
    assert denied.status_code == 403
    assert denied.json()["message"] == "Forbidden - Requires role: owner, member, application"
    assert second_owner.is_owner


def test_deleting_the_creator_deletes_their_tokens(team, owner):
    make_member(team, TeamRole.OWNER)
    token, raw = app_token_for(owner)
    owner.delete()
    assert not ApplicationToken.objects.filter(pk=token.pk).exists()
    assert bearer(raw).get("/sfp/api/users/me").json()["message"] == "Invalid application token"
