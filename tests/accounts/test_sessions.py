"""Interactive sessions: login, access-token checks, refresh rotation, logout, callback and
login throttling."""

import jwt
import pytest
from django.test import override_settings

from apps.accounts.models import AuditEvent, RefreshToken, TeamRole
from apps.accounts.tokens import issue_access_token
from tests.accounts.factories import DEFAULT_PASSWORD, TeamFactory, UserFactory, make_member
from tests.support.clients import bearer

pytestmark = pytest.mark.django_db

LOGIN = "/sfp/api/auth/admin/login"


@pytest.fixture
def member():
    return make_member(TeamFactory(), TeamRole.MEMBER, email="dev@example.com")


def login(client, email="dev@example.com", password=DEFAULT_PASSWORD, **extra):
    return client.post(LOGIN, {"email": email, "password": password}, format="json", **extra)


def test_login_returns_the_published_shape(api_client, member):
    response = login(api_client)
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["refresh_token"].startswith("sfp_rt_")
    assert body["user"]["email"] == "dev@example.com"
    assert body["user"]["role"] == "member"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["iss"] == "sfp-server"
    assert claims["aud"] == "sfp-server"
    assert claims["sub"] == str(member.pk)
    assert claims["exp"] - claims["iat"] == 900
    me = bearer(body["access_token"]).get("/sfp/api/users/me")
    assert me.status_code == 200
    assert me.json()["email"] == "dev@example.com"


@pytest.mark.parametrize(
    ("email", "password"),
    [("dev@example.com", "wrong-password"), ("nobody@example.com", DEFAULT_PASSWORD)],
)
def test_bad_credentials_get_one_message(api_client, member, email, password):
    response = login(api_client, email, password)
    assert response.status_code == 401
    assert response.json()["message"] == "Invalid credentials or insufficient permissions"
    assert AuditEvent.objects.filter(action="login.failed", target_id=email).count() == 1


def test_a_user_without_any_role_cannot_log_in(api_client):
    UserFactory(email="loner@example.com")
    response = login(api_client, "loner@example.com")
    assert response.status_code == 401


def test_login_validates_its_body(api_client):
    response = api_client.post(LOGIN, {"email": "not-an-email"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["details"]) == {"email", "password"}


@override_settings(SFP_LOGIN_MAX_FAILURES_PER_EMAIL=3)
def test_repeated_failures_for_an_email_get_429(api_client, member):
    for _ in range(3):
        assert login(api_client, password="nope").status_code == 401
    throttled = login(api_client)  # even the right password waits out the window
    assert throttled.status_code == 429
    assert throttled.json()["statusCode"] == 429
    assert int(throttled["Retry-After"]) > 0
    # Another email from another address is unaffected.
    other = make_member(TeamFactory(), email="other@example.com")
    assert login(api_client, other.email, REMOTE_ADDR="10.1.1.1").status_code == 200


@override_settings(SFP_LOGIN_MAX_FAILURES_PER_IP=4, SFP_LOGIN_MAX_FAILURES_PER_EMAIL=100)
def test_repeated_failures_from_an_ip_get_429(api_client, member):
    for n in range(4):
        assert login(api_client, f"guess{n}@example.com", REMOTE_ADDR="10.9.9.9").status_code == 401
    assert login(api_client, REMOTE_ADDR="10.9.9.9").status_code == 429
    assert login(api_client, REMOTE_ADDR="10.9.9.10").status_code == 200


@override_settings(SFP_LOGIN_MAX_FAILURES_PER_EMAIL=3)
def test_a_successful_login_resets_the_email_count(api_client, member):
    for _ in range(2):
        login(api_client, password="nope")
    assert login(api_client).status_code == 200
    for _ in range(2):
        login(api_client, password="nope")
    assert login(api_client).status_code == 200


def test_expired_and_invalid_access_tokens_are_told_apart(member, api_client):
    session = login(api_client).json()
    claims = jwt.decode(session["access_token"], options={"verify_signature": False})
    with override_settings(SFP_ACCESS_TOKEN_TTL_SECONDS=-1):
        expired, _ = issue_access_token(member, session_id=claims["sid"])
    assert bearer(expired).get("/sfp/api/users/me").json()["message"] == "Access token expired"

    tampered = session["access_token"][:-2] + (
        "AA" if session["access_token"][-2:] != "AA" else "BB"
    )
    response = bearer(tampered).get("/sfp/api/users/me")
    assert response.status_code == 401
    assert response.json()["message"] == "Invalid access token"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "overrides",
    [{"SFP_JWT_ISSUER": "someone-else"}, {"SFP_JWT_AUDIENCE": "another-api"}],
)
def test_issuer_and_audience_are_checked(member, api_client, overrides):
    session = login(api_client).json()
    with override_settings(**overrides):
        response = bearer(session["access_token"]).get("/sfp/api/users/me")
    assert response.status_code == 401
    assert response.json()["message"] == "Invalid access token"


def test_refresh_rotates_and_reuse_revokes_the_session(api_client, member):
    first = login(api_client).json()
    rotated = api_client.post(
        "/sfp/api/auth/refresh", {"refresh_token": first["refresh_token"]}, format="json"
    )
    assert rotated.status_code == 200
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert bearer(second["access_token"]).get("/sfp/api/users/me").status_code == 200

    reuse = api_client.post(
        "/sfp/api/auth/refresh", {"refresh_token": first["refresh_token"]}, format="json"
    )
    assert reuse.status_code == 401
    assert "already used" in reuse.json()["message"]
    # The whole session ended: the newer refresh token and the access tokens stop working.
    again = api_client.post(
        "/sfp/api/auth/refresh", {"refresh_token": second["refresh_token"]}, format="json"
    )
    assert again.status_code == 401
    response = bearer(second["access_token"]).get("/sfp/api/users/me")
    assert response.json()["message"] == "Session has been revoked"
    assert AuditEvent.objects.filter(action="session.reuse_detected").count() == 1


def test_logout_revokes_the_session(api_client, member):
    session = login(api_client).json()
    out = api_client.post(
        "/sfp/api/auth/logout", {"refresh_token": session["refresh_token"]}, format="json"
    )
    assert out.status_code == 200
    assert out.json() == {"success": True}
    assert bearer(session["access_token"]).get("/sfp/api/users/me").status_code == 401
    refresh = api_client.post(
        "/sfp/api/auth/refresh", {"refresh_token": session["refresh_token"]}, format="json"
    )
    assert refresh.json()["message"] == "Refresh token revoked"
    assert not RefreshToken.objects.filter(revoked_at__isnull=True).exists()


def test_unknown_refresh_token_is_401(api_client):
    response = api_client.post(
        "/sfp/api/auth/refresh", {"refresh_token": "sfp_rt_made-up"}, format="json"
    )
    assert response.status_code == 401
    assert response.json()["message"] == "Invalid refresh token"


def test_callback_validates_an_access_token(api_client, member):
    session = login(api_client).json()
    ok = api_client.post(
        "/sfp/api/auth/callback", {"access_token": session["access_token"]}, format="json"
    )
    assert ok.status_code == 200
    assert ok.json() == {"success": True, "data": {"userId": str(member.pk), "email": member.email}}
    bad = api_client.post("/sfp/api/auth/callback", {"access_token": "nope"}, format="json")
    assert bad.status_code == 401
    missing = api_client.post("/sfp/api/auth/callback", {}, format="json")
    assert missing.status_code == 400


def test_role_changes_apply_from_the_next_request(api_client):
    team = TeamFactory()
    owner = make_member(team, TeamRole.OWNER, email="boss@example.com")
    make_member(team, TeamRole.OWNER, email="other-owner@example.com")
    token = login(api_client, "boss@example.com").json()["access_token"]
    assert bearer(token).get("/sfp/api/users").status_code == 200
    owner.memberships.update(role=TeamRole.MEMBER)
    denied = bearer(token).get("/sfp/api/users")
    assert denied.status_code == 403
    assert denied.json()["message"] == "Forbidden - Requires role: owner"


def test_deactivated_user_loses_access_at_once(api_client, member):
    token = login(api_client).json()["access_token"]
    member.is_active = False
    member.save()
    assert bearer(token).get("/sfp/api/users/me").json()["message"] == "Invalid access token"


def test_owners_can_use_the_console_and_members_cannot(client):
    team = TeamFactory()
    owner = make_member(team, TeamRole.OWNER)
    member = make_member(team, TeamRole.MEMBER)
    client.login(email=member.email, password=DEFAULT_PASSWORD)
    assert client.get("/admin/").status_code == 302
    client.login(email=owner.email, password=DEFAULT_PASSWORD)
    assert client.get("/admin/").status_code == 200
