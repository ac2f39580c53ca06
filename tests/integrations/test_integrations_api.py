"""Integrations over the API: owners write, nobody reads secrets back except through the audited
credentials endpoint (owners and application tokens), and rejected requests store nothing."""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from apps.accounts.models import AuditEvent, TeamRole
from apps.integrations.models import Integration
from tests.accounts.factories import TeamFactory, access_token_for, app_token_for, make_member
from tests.support.clients import bearer

pytestmark = pytest.mark.django_db

PAT = "ghp_planted_pat_0123456789abcdef"


@pytest.fixture
def team():
    return TeamFactory()


@pytest.fixture
def owner(team):
    return make_member(team, TeamRole.OWNER, email="owner@example.com")


@pytest.fixture
def owner_client(owner):
    return bearer(access_token_for(owner))


@pytest.fixture
def app_client(owner):
    return bearer(app_token_for(owner)[1])


@pytest.fixture
def member_client(team):
    return bearer(access_token_for(make_member(team, TeamRole.MEMBER)))


def create_pat(client, token=PAT, **extra):
    body = {"provider": "github", "authType": "pat", "credentials": {"token": token}} | extra
    return client.post("/sfp/api/integrations", {"isGlobal": True} | body, format="json")


def test_owner_creates_and_lists_metadata_only(owner_client):
    created = create_pat(owner_client)
    assert created.status_code == 201
    body = created.json()
    assert body["provider"] == "github"
    assert body["authType"] == "pat"
    assert body["isGlobal"] is True
    assert body["credentialFields"] == ["token"]
    assert PAT not in created.content.decode()
    listing = owner_client.get("/sfp/api/integrations")
    assert [i["id"] for i in listing.json()] == [body["id"]]
    assert PAT not in listing.content.decode()
    assert PAT not in Integration.objects.get().credentials
    assert owner_client.get(f"/sfp/api/integrations/{body['id']}").json()["id"] == body["id"]


def test_legacy_snake_case_body_is_accepted(owner_client):
    response = owner_client.post(
        "/sfp/api/integrations",
        {
            "provider": "jfrog",
            "auth_type": "api_key",
            "is_global": True,
            "credentials": {"key": "k"},
        },
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["authType"] == "api_key"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"provider": "github", "authType": "pat", "credentials": {"token": PAT}},
         "Either isGlobal or projects must be specified (exactly one)"),
        ({"provider": "github", "authType": "pat", "credentials": {"token": PAT},
          "projects": ["acme/app"]}, "Project not found: acme/app"),
        ({"provider": "github", "authType": "pat", "isGlobal": True, "credentials": {}},
         "credentials must be a non-empty object"),
        ({"provider": "github", "authType": "basic_auth", "isGlobal": True,
          "credentials": {"token": PAT}},
         "authType basic_auth is not supported for github; use one of: app, pat"),
        ({"provider": "github", "authType": "app", "isGlobal": True,
          "credentials": {"appId": "1", "installationId": "2", "privateKey": PAT}},
         "credentials.privateKey is not a PEM-encoded RSA private key"),
        ({"provider": "azuredevops", "authType": "pat", "isGlobal": True,
          "credentials": {"token": PAT}}, "config.organization is required for Azure DevOps"),
        ({"provider": "azuredevops", "authType": "service_principal", "isGlobal": True,
          "credentials": {"clientId": "c", "tenantId": "t"}, "config": {"organization": "o"}},
         "credentials.clientSecret is required for azuredevops service_principal"),
    ],
)  # fmt: skip
def test_rejected_requests_store_nothing_and_say_why(owner_client, body, message):
    response = owner_client.post("/sfp/api/integrations", body, format="json")
    assert response.status_code == 400
    assert response.json()["message"] == message
    assert PAT not in response.content.decode()
    assert not Integration.objects.exists()
    assert not AuditEvent.objects.filter(action="integration.created").exists()


def test_unknown_provider_lists_the_valid_ones(owner_client):
    response = owner_client.post(
        "/sfp/api/integrations",
        {"provider": "bitbucket", "isGlobal": True, "credentials": {"token": "x"}},
        format="json",
    )
    assert response.status_code == 400
    assert "provider" in response.json()["details"]


def test_github_app_credentials_with_a_real_key_are_accepted(owner_client):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    response = owner_client.post(
        "/sfp/api/integrations",
        {
            "provider": "github",
            "authType": "app",
            "isGlobal": True,
            "credentials": {"appId": "123", "installationId": 456, "privateKey": pem},
        },
        format="json",
    )
    assert response.status_code == 201
    assert "BEGIN PRIVATE KEY" not in Integration.objects.get().credentials


def test_members_and_tokens_cannot_write(member_client, app_client):
    for client in (member_client, app_client):
        response = create_pat(client)
        assert response.status_code == 403
        assert response.json()["message"] == "Forbidden - Requires role: owner"
    assert member_client.get("/sfp/api/integrations").status_code == 403
    assert not Integration.objects.exists()


def test_credentials_go_to_owners_and_tokens_only_and_are_audited(
    owner_client, app_client, member_client
):
    create_pat(owner_client)
    for client in (owner_client, app_client):
        response = client.post(
            "/sfp/api/integrations/credentials", {"provider": "github"}, format="json"
        )
        assert response.status_code == 200
        [item] = response.json()
        assert item["credentials"] == {"token": PAT}
        assert item["auth_type"] == "pat"
    by_query = app_client.get("/sfp/api/integrations/credentials?provider=github&project=acme/app")
    assert by_query.json()[0]["credentials"]["token"] == PAT  # global fallback for the project
    denied = member_client.post(
        "/sfp/api/integrations/credentials", {"provider": "github"}, format="json"
    )
    assert denied.status_code == 403
    assert denied.json()["message"] == "Forbidden - Requires role: owner, application"

    reads = AuditEvent.objects.filter(action="credential.read", target_type="integration")
    assert reads.count() == 3
    assert {r.actor_role for r in reads} == {"owner", "application"}
    assert all(PAT not in str(r.after) for r in reads)


def test_no_credentials_for_a_provider_is_404(owner_client):
    response = owner_client.post(
        "/sfp/api/integrations/credentials", {"provider": "jira"}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["message"] == "No integration found for specified filters"


def test_update_replaces_credentials_and_delete_removes(owner_client):
    integration_id = create_pat(owner_client).json()["id"]
    updated = owner_client.put(
        f"/sfp/api/integrations/{integration_id}",
        {"credentials": {"token": "ghp_second_value"}},
        format="json",
    )
    assert updated.status_code == 200
    revealed = owner_client.post(
        "/sfp/api/integrations/credentials", {"provider": "github"}, format="json"
    ).json()
    assert revealed[0]["credentials"] == {"token": "ghp_second_value"}
    assert (
        owner_client.put(f"/sfp/api/integrations/{integration_id}", {}, format="json").status_code
        == 400
    )
    assert owner_client.delete(f"/sfp/api/integrations/{integration_id}").status_code == 200
    assert not Integration.objects.exists()
    assert owner_client.delete(f"/sfp/api/integrations/{integration_id}").status_code == 404


def test_test_connection_uses_the_stored_credentials(owner_client):
    from tests.support.fakes.github import FakeGitHub

    with FakeGitHub() as github:
        github.add_pat(PAT, login="octocat")
        good = create_pat(owner_client, config={"apiUrl": github.url}).json()["id"]
        bad = create_pat(owner_client, token="ghp_revoked", config={"apiUrl": github.url}).json()[
            "id"
        ]
        ok = owner_client.post(f"/sfp/api/integrations/{good}/test-connection")
        refused = owner_client.post(f"/sfp/api/integrations/{bad}/test-connection")
    assert ok.status_code == 200
    assert ok.json()["success"] is True
    assert refused.json()["success"] is False
    assert refused.json()["details"] == {"kind": "bad_credentials"}
    assert "ghp_revoked" not in refused.content.decode()


def test_project_scoped_integrations_come_before_the_global_fallback(owner_client, app_client):
    from apps.projects.models import Project

    Project.objects.create(
        identifier="acme/app", remote_url="https://github.com/acme/app", platform="github"
    )
    create_pat(owner_client, token="ghp_global")
    scoped = owner_client.post(
        "/sfp/api/integrations",
        {
            "provider": "github",
            "authType": "pat",
            "projects": ["acme/app"],
            "credentials": {"token": "ghp_scoped"},
        },
        format="json",
    )
    assert scoped.status_code == 201
    assert scoped.json()["projects"] == ["acme/app"]
    assert scoped.json()["isGlobal"] is False
    for_project = app_client.post(
        "/sfp/api/integrations/credentials",
        {"provider": "github", "project": "acme/app"},
        format="json",
    ).json()
    assert [i["credentials"]["token"] for i in for_project] == ["ghp_scoped"]
    elsewhere = app_client.post(
        "/sfp/api/integrations/credentials",
        {"provider": "github", "project": "acme/other"},
        format="json",
    ).json()
    assert [i["credentials"]["token"] for i in elsewhere] == ["ghp_global"]
