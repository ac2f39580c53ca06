"""The team rules through the API: the creator owns, one owner always, the last team stays, and
nobody raises their own role."""

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import Membership, Team, TeamRole
from tests.accounts.factories import TeamFactory, UserFactory, access_token_for, make_member

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
    return make_member(team, TeamRole.MEMBER, email="member@example.com")


def test_creator_becomes_owner(owner):
    response = bearer_for(owner).post(
        "/sfp/api/teams", {"name": "Release", "slug": "release"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["team"]["slug"] == "release"
    membership = Membership.objects.get(team__slug="release")
    assert (membership.user, membership.role) == (owner, TeamRole.OWNER)


def test_duplicate_or_bad_slug_is_refused(owner):
    client = bearer_for(owner)
    assert (
        client.post("/sfp/api/teams", {"name": "x", "slug": "core"}, format="json").status_code
        == 409
    )
    bad = client.post("/sfp/api/teams", {"name": "x", "slug": "Not A Slug"}, format="json")
    assert bad.status_code == 400
    assert "slug" in bad.json()["details"]
    assert Team.objects.count() == 1


def test_members_cannot_create_teams(member):
    response = bearer_for(member).post("/sfp/api/teams", {"name": "x", "slug": "x"}, format="json")
    assert response.status_code == 403
    assert response.json()["message"] == "Forbidden - Requires role: owner"


def test_last_team_cannot_be_deleted(owner, team):
    response = bearer_for(owner).delete(f"/sfp/api/teams/{team.slug}")
    assert response.status_code == 400
    assert response.json()["message"] == "The last team cannot be deleted"
    assert Team.objects.filter(slug="core").exists()


def test_a_team_is_deleted_by_its_owner_only(owner, team):
    other_team = TeamFactory(slug="other")
    other_owner = make_member(other_team, TeamRole.OWNER)
    denied = bearer_for(other_owner).delete(f"/sfp/api/teams/{team.slug}")
    assert denied.status_code == 403
    assert bearer_for(owner).delete(f"/sfp/api/teams/{team.slug}").status_code == 200
    assert not Team.objects.filter(slug="core").exists()


def test_last_owner_cannot_leave_or_be_demoted(owner, team):
    client = bearer_for(owner)
    leave = client.delete(f"/sfp/api/teams/{team.slug}/members/{owner.email}")
    assert leave.status_code == 400
    assert leave.json()["message"] == "Team core must keep at least one owner"
    demote = client.put(
        f"/sfp/api/teams/{team.slug}/members/{owner.email}/role", {"role": "member"}, format="json"
    )
    assert demote.status_code == 400
    assert Membership.objects.get(user=owner).role == TeamRole.OWNER


def test_an_owner_can_step_down_when_another_owner_remains(owner, team, member):
    client = bearer_for(owner)
    promote = client.put(
        f"/sfp/api/teams/{team.slug}/members/{member.email}/role", {"role": "owner"}, format="json"
    )
    assert promote.status_code == 200
    assert promote.json()["membership"]["role"] == "owner"
    step_down = client.put(
        f"/sfp/api/teams/{team.slug}/members/{owner.email}/role", {"role": "member"}, format="json"
    )
    assert step_down.status_code == 200
    assert Membership.objects.get(user=owner).role == TeamRole.MEMBER


def test_nobody_raises_their_own_role(member, team):
    client = bearer_for(member)
    via_team = client.put(
        f"/sfp/api/teams/{team.slug}/members/{member.email}/role", {"role": "owner"}, format="json"
    )
    assert via_team.status_code == 403
    via_user = client.put(
        f"/sfp/api/users/{member.email}?team={team.slug}", {"role": "owner"}, format="json"
    )
    assert via_user.status_code == 403
    assert via_user.json()["message"] == "You cannot raise your own role"
    assert Membership.objects.get(user=member).role == TeamRole.MEMBER


def test_owner_adds_lists_and_removes_members(owner, team):
    newcomer = UserFactory(email="new@example.com")
    client = bearer_for(owner)
    added = client.post(
        f"/sfp/api/teams/{team.slug}/members", {"email": newcomer.email}, format="json"
    )
    assert added.status_code == 201
    assert added.json()["membership"]["role"] == "member"
    again = client.post(
        f"/sfp/api/teams/{team.slug}/members", {"email": newcomer.email}, format="json"
    )
    assert again.status_code == 409

    listing = client.get(f"/sfp/api/teams/{team.slug}/members?limit=1").json()
    assert listing["total"] == 2
    assert len(listing["members"]) == 1
    assert set(listing["members"][0]) == {
        "user_id", "account_id", "email", "first_name", "last_name", "role", "created_at",
    }  # fmt: skip
    owners = client.get(f"/sfp/api/teams/{team.slug}/members?role=owner").json()
    assert [m["email"] for m in owners["members"]] == [owner.email]

    removed = client.delete(f"/sfp/api/teams/{team.slug}/members/{newcomer.email}")
    assert removed.status_code == 200
    assert not Membership.objects.filter(user=newcomer).exists()


def test_adding_an_unknown_user_is_404(owner, team):
    response = bearer_for(owner).post(
        f"/sfp/api/teams/{team.slug}/members", {"email": "ghost@example.com"}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["message"] == "User ghost@example.com not found"


def test_members_may_leave_but_not_remove_others(member, owner, team):
    other = make_member(team, TeamRole.MEMBER)
    client = bearer_for(member)
    assert client.delete(f"/sfp/api/teams/{team.slug}/members/{other.email}").status_code == 403
    assert client.delete(f"/sfp/api/teams/{team.slug}/members/{member.email}").status_code == 200


def test_member_listing_needs_access_to_the_team(member, team):
    outsider_team = TeamFactory(slug="elsewhere")
    outsider = make_member(outsider_team, TeamRole.MEMBER)
    assert bearer_for(member).get(f"/sfp/api/teams/{team.slug}/members").status_code == 200
    assert bearer_for(outsider).get(f"/sfp/api/teams/{team.slug}/members").status_code == 403


def test_invalid_pagination_is_400(owner, team):
    response = bearer_for(owner).get(f"/sfp/api/teams/{team.slug}/members?limit=abc")
    assert response.status_code == 400
    assert response.json()["details"] == {"limit": ["Integer."]}
