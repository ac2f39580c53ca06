"""The Salesforce org registry against a local fake Salesforce: registration proves the auth URL
before anything is stored, auth URLs go only to owners and tokens (audited), one default DevHub."""

import pytest
from django.test import override_settings

from apps.accounts.models import AuditEvent, TeamRole
from apps.environments.models import SalesforceOrg
from tests.accounts.factories import TeamFactory, access_token_for, app_token_for, make_member
from tests.support.clients import bearer
from tests.support.fakes.salesforce import FakeSalesforce

pytestmark = pytest.mark.django_db


@pytest.fixture
def salesforce():
    with FakeSalesforce() as fake, override_settings(SFP_SALESFORCE_INSECURE_HOSTS=[fake.host]):
        yield fake


@pytest.fixture
def team():
    return TeamFactory()


@pytest.fixture
def owner_client(team):
    return bearer(access_token_for(make_member(team, TeamRole.OWNER)))


@pytest.fixture
def member_client(team):
    return bearer(access_token_for(make_member(team, TeamRole.MEMBER)))


@pytest.fixture
def app_client(team):
    return bearer(app_token_for(make_member(team, TeamRole.OWNER))[1])


def register(client, auth_url, **extra):
    body = {"sfdxAuthUrl": auth_url} | extra
    return client.post("/sfp/api/auth/salesforce/register", body, format="json")


def test_register_proves_derives_and_seals(salesforce, owner_client):
    org = salesforce.add_org(username="ci@acme.example", organization_type="Enterprise Edition")
    response = register(
        owner_client, salesforce.auth_url(org.refresh_token), metadata={"team": "a"}
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["username"] == "ci@acme.example"
    assert body["orgId"] == org.org_id
    assert body["instanceUrl"] == salesforce.url
    assert body["organizationType"] == "Enterprise Edition"
    assert "sfdxAuthUrl" not in body
    stored = SalesforceOrg.objects.get()
    assert org.refresh_token not in stored.auth_url
    assert salesforce.requests_to("POST", "/services/oauth2/token")


def test_re_registering_the_same_username_updates(salesforce, owner_client):
    org = salesforce.add_org(username="ci@acme.example")
    register(owner_client, salesforce.auth_url(org.refresh_token))
    again = register(
        owner_client, salesforce.auth_url(org.refresh_token), isDevHub=True, metadata={"k": "v"}
    )
    assert again.status_code == 200
    assert again.json()["isDevHub"] is True
    assert SalesforceOrg.objects.count() == 1
    assert AuditEvent.objects.filter(action="org.updated").count() == 1


@pytest.mark.parametrize(
    ("auth_url", "fragment"),
    [
        ("https://acme.my.salesforce.com", "force://"),
        ("force://PlatformCLI::token-without-host", "@"),
        ("force://onlyone@acme.my.salesforce.com", ""),
        ("force://PlatformCLI::5Aep@evil.example.com", "not a Salesforce domain"),
    ],
)
def test_malformed_auth_urls_are_400_and_store_nothing(
    salesforce, owner_client, auth_url, fragment
):
    response = register(owner_client, auth_url)
    assert response.status_code == 400
    assert fragment in response.json()["message"]
    assert not SalesforceOrg.objects.exists()


def test_a_refused_connection_is_400_and_stores_nothing(salesforce, owner_client):
    org = salesforce.add_org()
    salesforce.revoke(org.refresh_token)
    response = register(owner_client, salesforce.auth_url(org.refresh_token))
    assert response.status_code == 400
    message = response.json()["message"]
    assert "refused the refresh token" in message
    assert org.refresh_token not in response.content.decode()
    assert not SalesforceOrg.objects.exists()
    assert not AuditEvent.objects.filter(action="org.registered").exists()


def test_an_unreachable_instance_is_400(owner_client):
    with override_settings(SFP_SALESFORCE_INSECURE_HOSTS=["127.0.0.1:9"]):
        response = register(owner_client, "force://PlatformCLI::5Aep_x@127.0.0.1:9")
    assert response.status_code == 400
    assert "Could not reach" in response.json()["message"]


def test_username_must_match_the_auth_url(salesforce, owner_client):
    org = salesforce.add_org(username="ci@acme.example")
    response = register(owner_client, salesforce.auth_url(org.refresh_token), username="x@y.z")
    assert response.status_code == 400
    assert response.json()["message"] == "The auth URL belongs to ci@acme.example, not x@y.z"


def test_one_default_devhub(salesforce, owner_client):
    first = salesforce.add_org(username="hub1@acme.example")
    second = salesforce.add_org(username="hub2@acme.example")
    not_hub = register(owner_client, salesforce.auth_url(first.refresh_token), isDefault=True)
    assert not_hub.status_code == 400
    register(owner_client, salesforce.auth_url(first.refresh_token), isDevHub=True, isDefault=True)
    register(owner_client, salesforce.auth_url(second.refresh_token), isDevHub=True, isDefault=True)
    defaults = SalesforceOrg.objects.filter(is_default=True)
    assert [o.username for o in defaults] == ["hub2@acme.example"]


def test_members_cannot_register(salesforce, member_client):
    org = salesforce.add_org()
    response = register(member_client, salesforce.auth_url(org.refresh_token))
    assert response.status_code == 403
    assert response.json()["message"] == "Forbidden - Requires role: owner, application"


def test_listing_filters_and_auth_urls_for_owners_and_tokens_only(
    salesforce, owner_client, member_client, app_client
):
    hub = salesforce.add_org(username="hub@acme.example")
    box = salesforce.add_org(username="qa@acme.example", is_sandbox=True)
    register(
        owner_client,
        salesforce.auth_url(hub.refresh_token),
        isDevHub=True,
        metadata={"tier": "prod"},
    )
    register(owner_client, salesforce.auth_url(box.refresh_token), metadata={"tier": "qa"})

    listing = member_client.get("/sfp/api/auth/salesforce/orgs").json()
    assert [o["username"] for o in listing] == ["hub@acme.example", "qa@acme.example"]
    assert all("sfdxAuthUrl" not in o for o in listing)
    assert [
        o["username"] for o in member_client.get("/sfp/api/auth/salesforce/orgs?devhub=true").json()
    ] == ["hub@acme.example"]
    assert [
        o["username"]
        for o in member_client.get("/sfp/api/auth/salesforce/orgs?type=sandbox").json()
    ] == ["qa@acme.example"]
    assert [
        o["username"]
        for o in member_client.get("/sfp/api/auth/salesforce/orgs?metadata=tier=qa").json()
    ] == ["qa@acme.example"]
    assert (
        member_client.get('/sfp/api/auth/salesforce/orgs?metadata={"tier":"prod"}').json()[0][
            "username"
        ]
        == "hub@acme.example"
    )

    denied = member_client.get("/sfp/api/auth/salesforce/orgs?includeAuthUrl=true")
    assert denied.status_code == 403
    for client in (owner_client, app_client):
        with_urls = client.get("/sfp/api/auth/salesforce/orgs?includeAuthUrl=true").json()
        # Canonical form: an http (test double) instance keeps its scheme, https ones drop it.
        expected = salesforce.auth_url(hub.refresh_token).replace("@", "@http://")
        assert with_urls[0]["sfdxAuthUrl"] == expected
    assert (
        AuditEvent.objects.filter(action="credential.read", target_type="salesforce_org").count()
        == 4
    )


def test_get_delete_and_test_connection(salesforce, owner_client, member_client):
    org = salesforce.add_org(username="ci@acme.example")
    register(owner_client, salesforce.auth_url(org.refresh_token))
    got = member_client.get("/sfp/api/auth/salesforce/org?username=ci@acme.example")
    assert got.status_code == 200
    assert got.json()["orgId"] == org.org_id
    assert member_client.get("/sfp/api/auth/salesforce/org").status_code == 400

    tested = member_client.post(
        "/sfp/api/auth/salesforce/test-connection", {"username": "ci@acme.example"}, format="json"
    )
    assert tested.json()["success"] is True
    salesforce.revoke(org.refresh_token)
    failed = member_client.post(
        "/sfp/api/auth/salesforce/test-connection", {"username": "ci@acme.example"}, format="json"
    ).json()
    assert failed["success"] is False
    assert "refused" in failed["message"]

    assert (
        member_client.delete("/sfp/api/auth/salesforce/org?username=ci@acme.example").status_code
        == 403
    )
    deleted = owner_client.delete("/sfp/api/auth/salesforce/org?username=ci@acme.example")
    assert deleted.json() == {"message": "Organization successfully deleted"}
    assert (
        owner_client.delete("/sfp/api/auth/salesforce/org?username=ci@acme.example").status_code
        == 404
    )
