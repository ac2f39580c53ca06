"""Authorisation over every endpoint: each URL declares its roles, and each identity gets exactly
the status and message those roles imply.

The expected roles below are the published ones (sfp-server-api.md); the test fails when a route
exists that this table does not know, when a view's declaration differs from it, or when any
identity is answered differently than the declaration requires.
"""

from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from apps.accounts.models import Membership, TeamRole
from apps.accounts.principal import principal_for_user
from apps.accounts.services import app_token_revoke, membership_set_role
from apps.accounts.tokens import issue_access_token
from apps.core.permissions import PUBLIC, declared_roles, requires_role_message
from tests.accounts.factories import (
    TeamFactory,
    access_token_for,
    app_token_for,
    expired_app_token_for,
    make_member,
)

OWNER = ("owner",)
OWNER_MEMBER = ("owner", "member")
ANY = ("owner", "member", "application")
OWNER_APPLICATION = ("owner", "application")
APPLICATION = ("application",)

# (method, route) -> (published roles, status when allowed with the probe request below)
EXPECTED = {
    ("GET", "health"): (PUBLIC, 200),
    ("GET", "sfp/api"): (PUBLIC, 200),
    ("GET", "sfp/api/ping"): (PUBLIC, 200),
    ("GET", "sfp/apidocs-json"): (PUBLIC, 200),
    ("GET", "sfp/apidocs"): (PUBLIC, 200),
    ("POST", "sfp/api/auth/admin/login"): (PUBLIC, 400),
    ("POST", "sfp/api/auth/refresh"): (PUBLIC, 400),
    ("POST", "sfp/api/auth/logout"): (PUBLIC, 400),
    ("POST", "sfp/api/auth/callback"): (PUBLIC, 400),
    ("GET", "sfp/api/users"): (OWNER, 200),
    ("POST", "sfp/api/users"): (OWNER, 400),
    ("DELETE", "sfp/api/users"): (OWNER, 400),
    ("GET", "sfp/api/users/me"): (ANY, 200),
    ("GET", "sfp/api/users/<str:email>"): (OWNER_MEMBER, 200),
    ("PUT", "sfp/api/users/<str:email>"): (OWNER_MEMBER, 200),
    ("GET", "sfp/api/teams"): (OWNER_MEMBER, 200),
    ("POST", "sfp/api/teams"): (OWNER, 400),
    ("DELETE", "sfp/api/teams/<slug:slug>"): (OWNER, 404),
    ("GET", "sfp/api/teams/<slug:slug>/members"): (ANY, 404),
    ("POST", "sfp/api/teams/<slug:slug>/members"): (OWNER, 404),
    ("DELETE", "sfp/api/teams/<slug:slug>/members/<str:email>"): (OWNER_MEMBER, 404),
    ("PUT", "sfp/api/teams/<slug:slug>/members/<str:email>/role"): (OWNER, 404),
    ("GET", "sfp/api/application-tokens"): (OWNER, 200),
    ("POST", "sfp/api/application-tokens"): (OWNER, 400),
    ("DELETE", "sfp/api/application-tokens/<str:token_id>"): (OWNER, 404),
    ("GET", "sfp/api/audit"): (OWNER, 200),
    ("GET", "sfp/api/config"): (PUBLIC, 200),
    ("GET", "sfp/api/sso/providers"): (OWNER, 200),
    ("POST", "sfp/api/sso/providers"): (OWNER, 400),
    ("DELETE", "sfp/api/sso/providers/<uuid:provider_id>"): (OWNER, 404),
    ("POST", "sfp/api/sso/providers/<uuid:provider_id>/refresh"): (OWNER, 404),
    ("POST", "sfp/api/repository/webhook"): (PUBLIC, 401),
    ("POST", "sfp/api/repository/webhook/azuredevops"): (PUBLIC, 401),
    ("GET", "sfp/api/repository/webhook-deliveries"): (OWNER_APPLICATION, 200),
    ("GET", "sfp/api/repository/auth-token"): (OWNER_APPLICATION, 400),
    ("GET", "sfp/api/integrations"): (OWNER, 200),
    ("POST", "sfp/api/integrations"): (OWNER, 400),
    ("GET", "sfp/api/integrations/credentials"): (OWNER_APPLICATION, 400),
    ("POST", "sfp/api/integrations/credentials"): (OWNER_APPLICATION, 400),
    ("GET", "sfp/api/integrations/<uuid:integration_id>"): (OWNER, 404),
    ("PUT", "sfp/api/integrations/<uuid:integration_id>"): (OWNER, 404),
    ("DELETE", "sfp/api/integrations/<uuid:integration_id>"): (OWNER, 404),
    ("POST", "sfp/api/integrations/<uuid:integration_id>/test-connection"): (OWNER, 404),
    ("POST", "sfp/api/flows/internal/credential-grants/<uuid:grant_id>/redeem"): (APPLICATION, 404),
    ("POST", "sfp/api/auth/salesforce/register"): (OWNER_APPLICATION, 400),
    ("GET", "sfp/api/auth/salesforce/orgs"): (ANY, 200),
    ("GET", "sfp/api/auth/salesforce/org"): (ANY, 400),
    ("DELETE", "sfp/api/auth/salesforce/org"): (OWNER, 400),
    ("POST", "sfp/api/auth/salesforce/test-connection"): (ANY, 400),
    ("GET", "sfp/api/projects"): (ANY, 200),
    ("POST", "sfp/api/projects"): (OWNER, 400),
    ("GET", "sfp/api/projects/<path:identifier>"): (ANY, 404),
    ("PATCH", "sfp/api/projects/<path:identifier>"): (OWNER_APPLICATION, 404),
    ("DELETE", "sfp/api/projects/<path:identifier>"): (OWNER, 404),
    ("GET", "sfp/api/environments"): (ANY, 200),
    ("POST", "sfp/api/environments"): (OWNER, 400),
    ("GET", "sfp/api/environments/orchestration-order"): (ANY, 400),
    ("GET", "sfp/api/environments/<uuid:environment_id>"): (ANY, 404),
    ("PUT", "sfp/api/environments/<uuid:environment_id>"): (OWNER, 404),
    ("DELETE", "sfp/api/environments/<uuid:environment_id>"): (OWNER, 404),
    ("PATCH", "sfp/api/environments/<uuid:environment_id>/metadata"): (OWNER_APPLICATION, 404),
    ("POST", "sfp/api/environments/<uuid:environment_id>/lock"): (ANY, 404),
    ("POST", "sfp/api/environments/<uuid:environment_id>/unlock"): (ANY, 404),
    ("GET", "sfp/api/environments/<uuid:environment_id>/credentials"): (OWNER_APPLICATION, 404),
    ("POST", "sfp/api/locks"): (OWNER_APPLICATION, 400),
    ("GET", "sfp/api/locks/<path:repository>/<str:resource>/<uuid:ticket_id>"): (ANY, 404),
    ("DELETE", "sfp/api/locks/<path:repository>/<str:resource>/<uuid:ticket_id>"): (ANY, 404),
    ("GET", "sfp/api/locks/<path:repository>/<str:resource>"): (ANY, 404),  # no such project
    ("POST", "sfp/api/locks/<path:repository>/<str:resource>/<uuid:ticket_id>/extend"): (ANY, 400),
    ("GET", "sfp/api/locks/requests/<uuid:request_id>"): (ANY, 404),
    ("DELETE", "sfp/api/locks/requests/<uuid:request_id>"): (ANY, 404),
    ("POST", "sfp/api/environments/lock-any"): (ANY, 400),
    ("GET", "sfp/api/tasks"): (ANY, 200),
    ("POST", "sfp/api/tasks"): (ANY, 400),
    ("DELETE", "sfp/api/tasks/<str:operation_id>"): (ANY, 404),
    ("GET", "sfp/api/tasks/<str:operation_id>/status"): (ANY, 404),
    ("GET", "sfp/api/tasks/<str:operation_id>/result"): (ANY, 404),
    ("POST", "sfp/api/tasks/<str:operation_id>/stop-recurring"): (OWNER_APPLICATION, 404),
    ("GET", "sfp/api/tasks/<str:operation_id>/recurring-instances"): (ANY, 404),
    ("POST", "sfp/api/pipelines"): (OWNER_APPLICATION, 400),
    ("GET", "sfp/api/pipelines/<str:operation_id>"): (ANY, 404),
    ("POST", "sfp/api/pipelines/<str:operation_id>/approve"): (OWNER, 404),
    ("POST", "sfp/api/pipelines/<str:operation_id>/reject"): (OWNER, 404),
    ("POST", "sfp/api/pipelines/<str:operation_id>/retry"): (OWNER_APPLICATION, 404),
    ("GET", "sfp/api/logs/<str:operation_id>"): (("member", "application"), 404),
    ("DELETE", "sfp/api/logs/<str:operation_id>"): (OWNER_APPLICATION, 404),
}


def _api_routes():
    """Every (route, view class, method) under /sfp and /health, from the live URL map."""

    def walk(patterns, prefix):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                route = prefix + str(entry.pattern)
                view_class = getattr(entry.callback, "cls", None) or getattr(
                    entry.callback, "view_class", None
                )
                yield route, entry.callback, view_class

    for route, callback, view_class in walk(get_resolver().url_patterns, ""):
        if not (route.startswith("sfp/") or route == "health"):
            continue
        methods = [
            m.upper()
            for m in ("get", "post", "put", "patch", "delete")
            if view_class is not None and hasattr(view_class, m)
        ]
        yield route, callback, view_class, methods


def test_every_api_view_declares_its_roles_and_they_match_the_published_ones():
    seen = set()
    for route, _callback, view_class, methods in _api_routes():
        assert view_class is not None, f"{route} is not a class-based API view"
        view = view_class()
        for method in methods:
            key = (method, route)
            seen.add(key)
            declared = declared_roles(view, method)  # raises when nothing is declared
            assert key in EXPECTED, f"{method} /{route} is not in the expected role table"
            expected_roles = EXPECTED[key][0]
            if expected_roles == PUBLIC:
                assert declared == PUBLIC, f"{method} /{route} should be public"
            else:
                assert set(declared) == set(expected_roles), f"{method} /{route}: {declared}"
    assert seen == set(EXPECTED), (
        f"expected routes missing from the URL map: {set(EXPECTED) - seen}"
    )


def _identities():
    """Every kind of caller, as (name, Authorization header or None, roles or an expected 401)."""
    team = TeamFactory()
    owner = make_member(team, TeamRole.OWNER)
    member = make_member(team, TeamRole.MEMBER)
    _, app_token = app_token_for(owner)
    revoked, revoked_raw = app_token_for(owner)
    app_token_revoke(actor=principal_for_user(owner), token_id=revoked.pk)

    demoted = make_member(team, TeamRole.OWNER)
    _, demoted_token = app_token_for(demoted)
    membership_set_role(
        actor=principal_for_user(owner), team=team, email=demoted.email, role=TeamRole.MEMBER
    )
    removed = make_member(team, TeamRole.OWNER)
    _, removed_token = app_token_for(removed)
    Membership.objects.filter(user=removed).delete()

    with override_settings(SFP_ACCESS_TOKEN_TTL_SECONDS=-60):
        expired_jwt, _ = issue_access_token(
            member, session_id="00000000-0000-0000-0000-000000000000"
        )

    return [
        ("anonymous", None, None, (401, "Authentication required")),
        ("member", access_token_for(member), member, frozenset({"member"})),
        ("owner", access_token_for(owner), owner, frozenset({"owner", "member"})),
        ("application", app_token, owner, frozenset({"application"})),
        ("token of a demoted creator", demoted_token, demoted, frozenset({"member"})),
        ("token of a removed creator", removed_token, removed, frozenset()),
        ("expired token", expired_app_token_for(owner), owner, (401, "Application token expired")),
        ("revoked token", revoked_raw, owner, (401, "Application token revoked")),
        ("expired session", expired_jwt, member, (401, "Access token expired")),
        ("forged session", "eyJhbGciOiJIUzI1NiJ9.e30.x", None, (401, "Invalid access token")),
    ]


def _probe_path(route: str, caller) -> str:
    email = caller.email if caller is not None else "nobody@example.com"
    return "/" + (
        route.replace("<slug:slug>", "no-such-team")
        .replace("<str:email>", email)
        .replace("<str:token_id>", "tok_missing")
        .replace("<uuid:integration_id>", "00000000-0000-0000-0000-000000000001")
        .replace("<uuid:grant_id>", "00000000-0000-0000-0000-000000000002")
        .replace("<str:operation_id>", "no-such-task")
        .replace("<path:identifier>", "no-such/project")
        .replace("<uuid:environment_id>", "00000000-0000-0000-0000-000000000003")
        .replace("<path:repository>", "acme/none")
        .replace("<str:resource>", "nothing")
        .replace("<uuid:ticket_id>", "00000000-0000-0000-0000-000000000004")
        .replace("<uuid:request_id>", "00000000-0000-0000-0000-000000000005")
        .replace("<uuid:provider_id>", "00000000-0000-0000-0000-000000000006")
    )


def test_role_matrix_over_every_endpoint_and_identity(db):
    identities = _identities()
    mismatches, cells = [], 0
    for name, header, caller, outcome in identities:
        client = APIClient()
        if header:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {header}")
        for (method, route), (roles, allowed_status) in EXPECTED.items():
            cells += 1
            path = _probe_path(route, caller)
            response = client.generic(method, path, "{}", content_type="application/json")
            if roles == PUBLIC:
                expected = (allowed_status, None)
            elif isinstance(outcome, tuple):
                expected = outcome
            elif set(roles) & outcome:
                expected = (allowed_status, None)
            else:
                expected = (403, requires_role_message(roles))
            status, message = expected
            body = (
                response.json() if response["Content-Type"].startswith("application/json") else {}
            )
            got_message = body.get("message") if isinstance(body, dict) else None
            if response.status_code != status or (message and got_message != message):
                mismatches.append(
                    f"{name:28} {method:6} {path}: got {response.status_code} {got_message!r}, "
                    f"expected {status} {message!r}"
                )
    print(f"role matrix: {len(EXPECTED)} endpoints x {len(identities)} identities = {cells} cells")
    assert not mismatches, "\n".join(mismatches)
