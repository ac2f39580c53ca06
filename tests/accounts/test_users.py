"""Users on the published paths: list with filters and pagination, self/owner reads and updates,
provisioning and deletion."""

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import AuditEvent, Membership, TeamRole, User
from tests.accounts.factories import TeamFactory, access_token_for, make_member

pytestmark = pytest.mark.django_db


def bearer_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token_for(user)}")
    return client


@pytest.fixture
def team():
    return TeamFactory(slug="core")


@pytest.fixture
def owner(team):
    return make_member(team, TeamRole.OWNER, email="owner@example.com")


@pytest.fixture
def member(team):
    return make_member(
        team, TeamRole.MEMBER, email="member@example.com", first_name="Mia", last_name="Stone"
    )


def test_owner_lists_users_with_filters_and_pagination(owner, member, team):
    other_team = TeamFactory(slug="other")
    make_member(other_team, TeamRole.MEMBER, email="zed@example.com")
    client = bearer_for(owner)

    everyone = client.get("/sfp/api/users").json()
    assert everyone["total"] == 3
    assert [u["email"] for u in everyone["users"]] == [
        "member@example.com", "owner@example.com", "zed@example.com",
    ]  # fmt: skip
    page = client.get("/sfp/api/users?limit=1&offset=1").json()
    assert [u["email"] for u in page["users"]] == ["owner@example.com"]
    assert (page["limit"], page["offset"], page["total"]) == (1, 1, 3)

    in_core = client.get("/sfp/api/users?team=core").json()
    assert {u["email"] for u in in_core["users"]} == {"owner@example.com", "member@example.com"}
    owners = client.get("/sfp/api/users?role=owner").json()
    assert [u["email"] for u in owners["users"]] == ["owner@example.com"]
    members_of_core = client.get("/sfp/api/users?team=core&role=member").json()
    assert [u["email"] for u in members_of_core["users"]] == ["member@example.com"]

    assert client.get("/sfp/api/users?role=admin").status_code == 400
    assert client.get("/sfp/api/users?team=nope").status_code == 404
    assert client.get("/sfp/api/users?limit=0").status_code == 400


def test_lookup_by_email(owner, member):
    client = bearer_for(owner)
    found = client.get("/sfp/api/users?lookup=email&id=MEMBER@example.com")
    assert found.status_code == 200
    assert found.json()["email"] == "member@example.com"
    assert "authData" not in found.json()
    assert client.get("/sfp/api/users?lookup=email&id=x@example.com").status_code == 404


def test_self_sees_full_profile_owner_sees_limited(owner, member):
    mine = bearer_for(member).get(f"/sfp/api/users/{member.email}").json()
    assert mine["authData"]["provider"] == "email"
    assert mine["role"] == "member"
    assert mine["teams"] == ["core"]
    theirs = bearer_for(owner).get(f"/sfp/api/users/{member.email}").json()
    assert "authData" not in theirs
    assert theirs["firstName"] == "Mia"


def test_members_cannot_read_or_update_others(owner, member):
    client = bearer_for(member)
    read = client.get(f"/sfp/api/users/{owner.email}")
    assert read.status_code == 403
    assert read.json()["message"] == "Forbidden - Requires role: owner"
    update = client.put(f"/sfp/api/users/{owner.email}", {"firstName": "x"}, format="json")
    assert update.status_code == 403


def test_self_update_of_names(member):
    original_last_name = member.last_name
    response = bearer_for(member).put(
        f"/sfp/api/users/{member.email}", {"firstName": "Maria", "lastName": "Lopez"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["user"]["firstName"] == "Maria"
    member.refresh_from_db()
    assert (member.first_name, member.last_name) == ("Maria", "Lopez")
    event = AuditEvent.objects.get(action="user.updated")
    assert event.before == {"first_name": "Mia", "last_name": original_last_name}
    assert event.after == {"first_name": "Maria", "last_name": "Lopez"}


def test_owner_changes_a_role_through_the_user_endpoint(owner, member):
    client = bearer_for(owner)
    no_team = client.put(f"/sfp/api/users/{member.email}", {"role": "owner"}, format="json")
    assert no_team.status_code == 400
    assert "team" in no_team.json()["details"]
    promoted = client.put(
        f"/sfp/api/users/{member.email}?team=core", {"role": "owner"}, format="json"
    )
    assert promoted.status_code == 200
    assert promoted.json()["user"]["role"] == "owner"


def test_owner_provisions_a_user(owner, team):
    client = bearer_for(owner)
    response = client.post(
        "/sfp/api/users",
        {"email": "New@Example.com", "firstName": "N", "lastName": "U", "team": "core"},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["user"]["role"] == "member"
    user = User.objects.get(email="new@example.com")
    assert not user.has_usable_password()
    assert Membership.objects.get(user=user).team == team
    duplicate = client.post("/sfp/api/users", {"email": "new@example.com"}, format="json")
    assert duplicate.status_code == 409


def test_provisioning_rejects_a_weak_password_and_writes_nothing(owner):
    response = bearer_for(owner).post(
        "/sfp/api/users", {"email": "weak@example.com", "password": "123"}, format="json"
    )
    assert response.status_code == 400
    assert "password" in response.json()["details"]
    assert not User.objects.filter(email="weak@example.com").exists()
    assert not AuditEvent.objects.filter(action="user.created").exists()


def test_owner_deletes_a_user_but_not_a_teams_last_owner(owner, member):
    client = bearer_for(owner)
    gone = client.delete("/sfp/api/users", {"email": member.email}, format="json")
    assert gone.status_code == 200
    assert not User.objects.filter(email=member.email).exists()
    last_owner = client.delete("/sfp/api/users", {"email": owner.email}, format="json")
    assert last_owner.status_code == 400
    assert User.objects.filter(email=owner.email).exists()
    assert (
        client.delete("/sfp/api/users", {"email": "x@example.com"}, format="json").status_code
        == 404
    )
