"""Bearer authentication: one query per credential, roles read with it, and still current."""

import jwt
import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.authentication import authenticate_bearer
from apps.accounts.models import Membership, RefreshToken, TeamRole
from apps.accounts.tokens import TokenError, _jwt_key
from tests.accounts.factories import (
    MembershipFactory,
    TeamFactory,
    access_token_for,
    app_token_for,
    make_member,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def team():
    return TeamFactory()


def test_app_token_is_one_query_with_the_creators_roles(team):
    owner = make_member(team, TeamRole.OWNER)
    _, raw = app_token_for(owner)
    authenticate_bearer(raw)  # the first use also stamps last_used_at
    with CaptureQueriesContext(connection) as queries:
        principal = authenticate_bearer(raw)
    assert len(queries.captured_queries) == 1
    assert principal.roles == frozenset({"application"})
    assert principal.user == owner


def test_app_token_follows_its_creators_demotion_on_the_next_request(team):
    owner = make_member(team, TeamRole.OWNER)
    _, raw = app_token_for(owner)
    assert authenticate_bearer(raw).roles == frozenset({"application"})
    Membership.objects.filter(user=owner).update(role=TeamRole.MEMBER)
    assert authenticate_bearer(raw).roles == frozenset({"member"})
    Membership.objects.filter(user=owner).delete()
    assert authenticate_bearer(raw).roles == frozenset()


def test_access_token_is_one_query_with_session_and_roles(team):
    owner = make_member(team, TeamRole.OWNER)
    MembershipFactory(user=owner, role=TeamRole.MEMBER)  # a second team: still one row
    raw = access_token_for(owner)
    with CaptureQueriesContext(connection) as queries:
        principal = authenticate_bearer(raw)
    assert len(queries.captured_queries) == 1
    assert principal.roles == frozenset({"owner", "member"})
    assert principal.session_id


def test_access_token_of_a_revoked_session_is_refused(team):
    member = make_member(team)
    raw = access_token_for(member)
    assert authenticate_bearer(raw).roles == frozenset({"member"})
    RefreshToken.objects.filter(user=member).update(revoked_at=timezone.now())
    with pytest.raises(TokenError, match="Session has been revoked"):
        authenticate_bearer(raw)


def test_access_token_of_a_deactivated_user_is_refused(team):
    member = make_member(team)
    raw = access_token_for(member)
    member.is_active = False
    member.save(update_fields=["is_active"])
    with pytest.raises(TokenError, match="Invalid access token"):
        authenticate_bearer(raw)


def test_not_a_uuid_session_id_over_http_is_a_401(api_client, team):
    member = make_member(team)
    now = int(timezone.now().timestamp())
    raw = jwt.encode(
        {
            "iss": settings.SFP_JWT_ISSUER,
            "aud": settings.SFP_JWT_AUDIENCE,
            "sub": str(member.pk),
            "sid": "x" * 40,
            "typ": "access",
            "iat": now,
            "exp": now + 60,
        },
        _jwt_key(),
        algorithm="HS256",
    )
    response = api_client.get("/sfp/api/projects", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 401
    assert response.json()["message"] == "Invalid access token"
