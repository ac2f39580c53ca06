"""The console (Django admin): owners only, branded, and bound by the same team rules as the API."""

import pytest

from apps.accounts.models import ApplicationToken, AuditEvent, Membership, Team, TeamRole, User
from tests.accounts.factories import (
    DEFAULT_PASSWORD,
    TeamFactory,
    UserFactory,
    app_token_for,
    make_member,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def team():
    return TeamFactory(slug="core")


@pytest.fixture
def owner(team):
    return make_member(team, TeamRole.OWNER, email="owner@example.com")


@pytest.fixture
def console(client, owner):
    assert client.login(email=owner.email, password=DEFAULT_PASSWORD)
    return client


def test_signing_in_to_the_console_goes_through_the_dashboard_login(client, owner):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/"
    login = client.get(response["Location"])
    assert login.status_code == 302
    assert login["Location"] == "/login?next=/admin/"
    signed_in = client.post(
        "/login", {"email": owner.email, "password": DEFAULT_PASSWORD, "next": "/admin/"}
    )
    assert signed_in["Location"] == "/admin/"
    console = client.get("/admin/")
    assert console.status_code == 200
    assert b"sfp server console" in console.content
    assert AuditEvent.objects.filter(action="login.succeeded", target_id=owner.email).exists()


def test_a_member_signed_in_is_refused_without_a_redirect_loop(client, team):
    member = make_member(team, TeamRole.MEMBER, email="dev@example.com")
    client.force_login(member)
    response = client.get("/admin/", follow=True)
    assert response.status_code == 403
    assert b"The console is for owners." in response.content


def test_every_screen_opens(console, owner):
    app_token_for(owner)
    for model in ("user", "team", "membership", "applicationtoken", "refreshtoken", "auditevent"):
        assert console.get(f"/admin/accounts/{model}/").status_code == 200, model


def test_owner_creates_a_user(console):
    created = console.post(
        "/admin/accounts/user/add/",
        {
            "email": "new@example.com",
            "usable_password": "true",
            "password1": "a-long-enough-password-1",
            "password2": "a-long-enough-password-1",
        },
    )
    assert created.status_code == 302
    assert User.objects.get(email="new@example.com").check_password("a-long-enough-password-1")


def test_password_hashes_are_not_shown(console, owner):
    page = console.get(f"/admin/accounts/user/{owner.pk}/change/")
    assert page.status_code == 200
    assert owner.password.encode() not in page.content


def test_token_screen_masks_tokens_and_revokes(console, owner):
    token, raw = app_token_for(owner)
    listing = console.get("/admin/accounts/applicationtoken/")
    assert raw.encode() not in listing.content
    assert token.token_hash.encode() not in listing.content
    assert f"sfp_app_…{token.last4}".encode() in listing.content
    detail = console.get(f"/admin/accounts/applicationtoken/{token.pk}/change/")
    assert token.token_hash.encode() not in detail.content
    console.post(
        "/admin/accounts/applicationtoken/",
        {"action": "revoke_tokens", "_selected_action": [token.pk]},
    )
    assert ApplicationToken.objects.get(pk=token.pk).status == "revoked"


def test_team_created_in_the_console_is_owned_by_its_creator(console, owner):
    response = console.post("/admin/accounts/team/add/", {"slug": "ops", "name": "Ops"})
    assert response.status_code == 302
    membership = Membership.objects.get(team__slug="ops")
    assert (membership.user, membership.role) == (owner, TeamRole.OWNER)


def test_console_refuses_to_demote_the_last_owner(console, owner, team):
    membership = Membership.objects.get(user=owner)
    response = console.post(
        f"/admin/accounts/membership/{membership.pk}/change/", {"role": "member"}, follow=True
    )
    assert b"must keep at least one owner" in response.content
    assert Membership.objects.get(pk=membership.pk).role == TeamRole.OWNER


def test_console_refuses_to_delete_the_last_team(console, team):
    response = console.post(f"/admin/accounts/team/{team.pk}/delete/", {"post": "yes"}, follow=True)
    assert b"The last team cannot be deleted" in response.content
    assert Team.objects.filter(pk=team.pk).exists()


def test_console_adds_a_member_through_the_rules(console, team):
    newcomer = UserFactory(email="n@example.com")
    response = console.post(
        "/admin/accounts/membership/add/",
        {"team": team.pk, "user": newcomer.pk, "role": "member"},
    )
    assert response.status_code == 302
    assert Membership.objects.filter(team=team, user=newcomer).exists()


def test_members_are_kept_out_of_the_console(client, team):
    member = make_member(team, TeamRole.MEMBER)
    client.login(email=member.email, password=DEFAULT_PASSWORD)
    assert client.get("/admin/accounts/user/").status_code == 302


def test_admin_static_files_are_served(client):
    assert client.get("/static/admin/css/base.css").status_code == 200
