"""Console screens for integrations, orgs and grants: secrets masked, test-connection actions."""

import pytest
from django.test import override_settings

from apps.accounts.models import TeamRole
from apps.integrations.models import Integration
from tests.accounts.factories import DEFAULT_PASSWORD, TeamFactory, make_member
from tests.integrations.factories import sealed_integration, sealed_org
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.salesforce import FakeSalesforce

pytestmark = pytest.mark.django_db

PAT = "ghp_console_planted_pat"


@pytest.fixture
def console(client):
    owner = make_member(TeamFactory(), TeamRole.OWNER)
    client.login(email=owner.email, password=DEFAULT_PASSWORD)
    return client


def test_integration_screens_mask_credentials(console):
    integration = sealed_integration(credentials={"token": PAT}, is_global=True)
    listing = console.get("/admin/integrations/integration/")
    detail = console.get(f"/admin/integrations/integration/{integration.pk}/change/")
    for page in (listing, detail):
        assert page.status_code == 200
        assert PAT.encode() not in page.content
        assert integration.credentials.encode() not in page.content
    assert b"token: \xe2\x80\xa2\xe2\x80\xa2" in detail.content
    assert console.get("/admin/integrations/credentialgrant/").status_code == 200


def test_integration_test_connection_action(console):
    with FakeGitHub() as github:
        github.add_pat(PAT, login="octocat")
        integration = sealed_integration(
            credentials={"token": PAT}, is_global=True, config={"apiUrl": github.url}
        )
        bad = sealed_integration(
            credentials={"token": "ghp_wrong"}, is_global=True, config={"apiUrl": github.url}
        )
        page = console.post(
            "/admin/integrations/integration/",
            {"action": "test_connection", "_selected_action": [integration.pk, bad.pk]},
            follow=True,
        )
    text = page.content.decode()
    assert "Connection succeeded" in text
    assert "GitHub" in text
    assert "ghp_wrong" not in text
    assert PAT not in text


def test_deleting_an_integration_in_the_console_is_audited(console):
    integration = sealed_integration(is_global=True)
    console.post(f"/admin/integrations/integration/{integration.pk}/delete/", {"post": "yes"})
    assert not Integration.objects.exists()


def test_org_screen_masks_the_auth_url_and_tests_connections(console):
    with (
        FakeSalesforce() as salesforce,
        override_settings(SFP_SALESFORCE_INSECURE_HOSTS=[salesforce.host]),
    ):
        fake_org = salesforce.add_org(username="ci@acme.example")
        org = sealed_org(
            username="ci@acme.example",
            auth_url=salesforce.auth_url(fake_org.refresh_token),
            instance_url=salesforce.url,
        )
        detail = console.get(f"/admin/environments/salesforceorg/{org.pk}/change/")
        assert fake_org.refresh_token.encode() not in detail.content
        assert b"force://\xe2\x80\xa2" in detail.content
        page = console.post(
            "/admin/environments/salesforceorg/",
            {"action": "test_connection", "_selected_action": [org.pk]},
            follow=True,
        )
    assert "Org ci@acme.example: Connection succeeded" in page.content.decode()
