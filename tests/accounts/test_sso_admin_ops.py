"""SSO operations beyond a single login: metadata downloaded from a URL and refreshed (on demand
and by the scheduled command, a failed download keeping the last good metadata), the init and
rotation command, a domain that requires SSO (password login refused, break-glass owner allowed),
and the providers' console screen."""

import pytest
from django.core.management import CommandError, call_command

from apps.accounts.models import AuditEvent, SamlIdentityProvider, SamlSigningKey, TeamRole
from apps.accounts.sso import saml
from tests.accounts.factories import DEFAULT_PASSWORD, TeamFactory, access_token_for, make_member
from tests.support.clients import bearer
from tests.support.fakes import FakeResponse, FakeServer
from tests.support.saml_idp import SamlTestIdentityProvider

pytestmark = pytest.mark.django_db


class FakeMetadataHost(FakeServer):
    """Serves an IdP's federation metadata at /federationmetadata.xml, or a chosen failure."""

    def __init__(self, xml: str):
        super().__init__()
        self.xml = xml
        self.status = 200

    def handle(self, request):
        if request.route != "/federationmetadata.xml":
            return super().handle(request)
        return FakeResponse.text(self.status, self.xml, "application/samlmetadata+xml")


@pytest.fixture
def team():
    return TeamFactory(slug="eng")


@pytest.fixture
def owner(team):
    return make_member(team, TeamRole.OWNER, email="owner@corp.example.com")


@pytest.fixture
def metadata_host():
    idp = SamlTestIdentityProvider(saml.sp_metadata_xml())
    with FakeMetadataHost(idp.metadata_xml()) as host:
        yield host


def register(owner, body):
    return bearer(access_token_for(owner)).post("/sfp/api/sso/providers", body, format="json")


def test_metadata_url_is_downloaded_and_refreshed_on_demand_and_by_the_command(
    owner, metadata_host
):
    url = metadata_host.url + "/federationmetadata.xml"
    created = register(owner, {"metadataUrl": url, "domains": ["corp.example.com"]})
    assert created.status_code == 201, created.json()
    provider_id = created.json()["id"]
    before = SamlIdentityProvider.objects.get(pk=provider_id).metadata_refreshed_at

    refreshed = bearer(access_token_for(owner)).post(
        f"/sfp/api/sso/providers/{provider_id}/refresh"
    )
    assert refreshed.status_code == 200
    assert SamlIdentityProvider.objects.get(pk=provider_id).metadata_refreshed_at > before
    call_command("sso_refresh_metadata")
    assert len(metadata_host.requests_to("GET", "/federationmetadata.xml")) == 3

    metadata_host.status = 503
    with pytest.raises(CommandError):
        call_command("sso_refresh_metadata")
    provider = SamlIdentityProvider.objects.get(pk=provider_id)
    assert provider.metadata_refresh_error == "metadataUrl answered HTTP 503"
    assert provider.signing_certificates  # the last good metadata is kept
    assert AuditEvent.objects.filter(action="sso.provider.refresh_failed").exists()


def test_an_unreachable_metadata_url_is_a_400(owner):
    response = register(
        owner, {"metadataUrl": "http://127.0.0.1:9/none.xml", "domains": ["corp.example.com"]}
    )
    assert response.status_code == 400
    assert "could not be fetched" in response.json()["message"]


def test_bad_domains_and_both_metadata_sources_are_400(owner, metadata_host):
    assert register(owner, {"metadataXml": "<x/>", "domains": ["not a domain"]}).status_code == 400
    both = {"metadataXml": "<x/>", "metadataUrl": metadata_host.url, "domains": ["a.example"]}
    assert register(owner, both).status_code == 400


def test_saml_init_creates_once_rotates_and_retires(capsys):
    call_command("saml_init")
    call_command("saml_init")
    assert SamlSigningKey.objects.count() == 1
    assert "SHA-256" in capsys.readouterr().out
    call_command("saml_init", "--rotate")
    assert SamlSigningKey.objects.filter(retired_at__isnull=True).count() == 2
    call_command("saml_init", "--retire-older")
    assert SamlSigningKey.objects.filter(retired_at__isnull=True).count() == 1


def test_required_sso_refuses_password_login_except_for_an_owner(owner, team, metadata_host):
    make_member(team, TeamRole.MEMBER, email="dev@corp.example.com")
    body = {
        "metadataXml": metadata_host.xml,
        "domains": ["corp.example.com"],
        "ssoRequired": True,
    }
    assert register(owner, body).status_code == 201
    login = "/sfp/api/auth/admin/login"
    client = bearer("")
    member = client.post(
        login, {"email": "dev@corp.example.com", "password": DEFAULT_PASSWORD}, format="json"
    )
    assert member.status_code == 401
    assert "single sign-on" in member.json()["message"]
    failure = AuditEvent.objects.filter(action="login.failed").latest("id")
    assert failure.after["reason"] == "SSO is required for this domain"
    owner_login = client.post(
        login, {"email": "owner@corp.example.com", "password": DEFAULT_PASSWORD}, format="json"
    )
    assert owner_login.status_code == 200


def test_console_lists_providers_with_domains_and_last_refresh(client, owner, metadata_host):
    register(owner, {"metadataXml": metadata_host.xml, "domains": ["corp.example.com"]})
    client.force_login(owner)
    page = client.get("/admin/accounts/samlidentityprovider/")
    assert page.status_code == 200
    assert b"corp.example.com" in page.content
    assert b"BEGIN" not in page.content  # no key material on the screen
