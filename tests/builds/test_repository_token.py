"""`GET /sfp/api/repository/auth-token` as the published `get-github-token` Action calls it: a
GitHub App installation token minted against FakeGitHub (which verifies the App JWT's RS256
signature), reused while fresh, audited without the token; a PAT only when no App exists; and
the refusals (unknown repository, no integration, non-GitHub project, App refused, rate limit)."""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from rest_framework.test import APIClient

from apps.accounts.models import AuditEvent, TeamRole
from apps.integrations.providers import clear_token_cache
from apps.projects.models import Platform
from tests.accounts.factories import TeamFactory, access_token_for, app_token_for, make_member
from tests.integrations.factories import sealed_integration
from tests.projects.factories import ProjectFactory
from tests.support.fakes.github import FakeGitHub

pytestmark = pytest.mark.django_db
APP_ID = "424242"
INSTALLATION_ID = "9000"
PAT = "ghp_stored_long_lived_pat_0123456789"


@pytest.fixture(scope="module")
def app_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(autouse=True)
def _empty_token_cache():
    clear_token_cache()
    yield
    clear_token_cache()


@pytest.fixture
def github(app_key):
    public = app_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with FakeGitHub() as fake:
        fake.add_app(APP_ID, public.decode())
        fake.add_installation(INSTALLATION_ID, app_id=APP_ID, account="acme")
        yield fake


def app_integration(github, app_key, *, installation=INSTALLATION_ID):
    private = app_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return sealed_integration(
        auth_type="app",
        credentials={"appId": APP_ID, "privateKey": private, "installationId": installation},
        is_global=True,
        config={"apiUrl": github.url},
    )


@pytest.fixture
def ci_token():
    owner = make_member(TeamFactory(), TeamRole.OWNER)
    return app_token_for(owner)[1]


def action_request(token: str, repository: str = "acme/app"):
    """Exactly what flxbl-io/get-github-token sends: the identifier URL-encoded, a bearer."""
    from urllib.parse import quote

    return APIClient().get(
        f"/sfp/api/repository/auth-token?repositoryIdentifier={quote(repository, safe='')}",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        content_type="application/json",
    )


def test_app_installation_token_with_the_published_fields(github, app_key, ci_token):
    ProjectFactory(identifier="acme/app")
    app_integration(github, app_key)
    sealed_integration(credentials={"token": PAT}, is_global=True)  # an App wins over a PAT
    response = action_request(ci_token)
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"token", "expiresAt", "type", "provider", "scope"}
    assert body["token"].startswith("ghs_") and body["token"] != PAT
    assert (body["type"], body["provider"]) == ("installation", "github")
    assert body["expiresAt"]
    assert response["Cache-Control"] == "no-store"
    assert github.tokens_minted == 1
    again = action_request(ci_token).json()
    assert again["token"] == body["token"] and github.tokens_minted == 1  # reused while fresh
    audit = AuditEvent.objects.filter(action="repository.token_issued")
    assert audit.count() == 2
    assert all(body["token"] not in str(row.after) for row in audit)


def test_pat_is_handed_out_only_without_an_app(ci_token):
    ProjectFactory(identifier="acme/app")
    sealed_integration(credentials={"token": PAT}, is_global=True)
    body = action_request(ci_token).json()
    assert body == {
        "token": PAT,
        "expiresAt": None,
        "type": "pat",
        "provider": "github",
        "scope": "user",
    }


def test_unknown_repository_is_404(ci_token):
    response = action_request(ci_token, "acme/unknown")
    assert response.status_code == 404
    assert response.json()["message"] == "Project acme/unknown not found"


def test_missing_identifier_is_400(ci_token):
    response = APIClient().get(
        "/sfp/api/repository/auth-token", HTTP_AUTHORIZATION=f"Bearer {ci_token}"
    )
    assert response.status_code == 400


def test_no_github_integration_is_404(ci_token):
    ProjectFactory(identifier="acme/app")
    response = action_request(ci_token)
    assert response.status_code == 404
    assert response.json()["message"] == "No GitHub integration covers acme/app"


def test_non_github_project_is_400(ci_token):
    ProjectFactory(identifier="org/proj/repo", platform=Platform.AZURE_DEVOPS)
    assert action_request(ci_token, "org/proj/repo").status_code == 400


def test_revoked_installation_is_502_without_secrets(github, app_key, ci_token):
    ProjectFactory(identifier="acme/app")
    app_integration(github, app_key)
    github.revoke_installation(INSTALLATION_ID)
    response = action_request(ci_token)
    assert response.status_code == 502
    assert "PRIVATE KEY" not in response.content.decode()


def test_integration_that_cannot_issue_tokens_is_502(ci_token):
    ProjectFactory(identifier="acme/app")
    sealed_integration(auth_type="oauth", credentials={"clientId": "x"}, is_global=True)
    response = action_request(ci_token)
    assert response.status_code == 502
    assert response.json()["message"] == "The GitHub integration (oauth) cannot issue tokens"


def test_rate_limited_github_is_429_with_retry_after(github, app_key, ci_token):
    ProjectFactory(identifier="acme/app")
    app_integration(github, app_key)
    github.rate_limit(reset_in_seconds=120)
    response = action_request(ci_token)
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 130


def test_members_and_anonymous_are_refused():
    ProjectFactory(identifier="acme/app")
    member = make_member(TeamFactory(), TeamRole.MEMBER)
    assert action_request(access_token_for(member)).status_code == 403
    assert (
        APIClient().get("/sfp/api/repository/auth-token?repositoryIdentifier=a%2Fb").status_code
        == 401
    )
