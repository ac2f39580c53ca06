"""SAML SSO against a real pysaml2 identity provider: SP metadata, the provider API, valid SP-
and IdP-initiated logins ending in the project's own session, and the refusal catalogue (each a
4xx with a `login.failed` audit row naming the provider and reason, nothing provisioned)."""

import copy
from urllib.parse import parse_qs, urlsplit

import pytest
from lxml import etree
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from apps.accounts.models import AuditEvent, SamlIdentityProvider, TeamRole, User
from apps.accounts.sso import saml
from tests.accounts.factories import TeamFactory, access_token_for, app_token_for, make_member
from tests.support.clients import bearer
from tests.support.saml_idp import SamlTestIdentityProvider, encoded

pytestmark = pytest.mark.django_db

PUBLIC_URL = "https://sfp.example.test"
ACS = PUBLIC_URL + "/auth/v1/sso/saml/acs"
SP_ENTITY = PUBLIC_URL + "/auth/v1/sso/saml/metadata"
NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}


@pytest.fixture(autouse=True)
def _public_url(settings):
    settings.SFP_PUBLIC_URL = PUBLIC_URL


@pytest.fixture
def team():
    return TeamFactory(slug="eng")


@pytest.fixture
def owner(team):
    return make_member(team, TeamRole.OWNER, email="owner@corp.example.com")


@pytest.fixture
def idp():
    return SamlTestIdentityProvider(saml.sp_metadata_xml())


@pytest.fixture
def provider(owner, idp):
    response = bearer(access_token_for(owner)).post(
        "/sfp/api/sso/providers",
        {"metadataXml": idp.metadata_xml(), "domains": ["corp.example.com"]},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return SamlIdentityProvider.objects.get(pk=response.json()["id"])


def post_acs(client, xml: str, relay_state: str = ""):
    return client.post(ACS, {"SAMLResponse": encoded(xml), "RelayState": relay_state})


def idp_initiated(idp, email="owner@corp.example.com", **options):
    return idp.response(email=email, sp_entity_id=SP_ENTITY, acs_url=ACS, **options)


def last_failure() -> AuditEvent:
    return AuditEvent.objects.filter(action="login.failed").order_by("-id").first()


def assert_refused(response, provider, reason_part: str):
    assert 400 <= response.status_code < 500, response.content
    body = response.json()
    assert set(body) >= {"statusCode", "message", "error"}
    failure = last_failure()
    assert failure is not None
    assert failure.after["method"] == "saml"
    if provider is not None:
        assert failure.after["provider"] == provider.entity_id
    assert reason_part.lower() in failure.after["reason"].lower(), failure.after["reason"]
    assert "_auth_user_id" not in response.client.session


# --- SP metadata and the provider API -------------------------------------------------------


def test_sp_metadata_publishes_fixed_urls_and_a_generated_certificate(client):
    response = client.get("/auth/v1/sso/saml/metadata")
    assert response.status_code == 200
    root = etree.fromstring(response.content)
    assert root.get("entityID") == SP_ENTITY
    md = "urn:oasis:names:tc:SAML:2.0:metadata"
    descriptor = root.find(f"{{{md}}}SPSSODescriptor")
    assert descriptor.get("AuthnRequestsSigned") == "true"
    assert descriptor.get("WantAssertionsSigned") == "true"
    acs = descriptor.find(f"{{{md}}}AssertionConsumerService")
    assert acs.get("Location") == ACS
    assert root.findall(".//ds:X509Certificate", NS)


def test_signing_key_is_sealed_in_the_vault_and_rotation_publishes_both(client):
    key = saml.signing_key_ensure()
    assert "PRIVATE KEY" not in key.private_key
    assert key.private_key.startswith("sfpv1.")
    saml.signing_key_create()
    metadata = client.get("/auth/v1/sso/saml/metadata").content
    assert len(etree.fromstring(metadata).findall(".//ds:X509Certificate", NS)) >= 2
    assert saml.signing_key_retire_older() == 1


def test_provider_api_lists_and_deletes_and_config_publishes_domains(owner, provider, client):
    api = bearer(access_token_for(owner))
    listed = api.get("/sfp/api/sso/providers").json()
    assert listed[0]["domains"] == ["corp.example.com"]
    assert listed[0]["entityId"] == provider.entity_id
    config = client.get("/sfp/api/config").json()
    assert config["deploymentMode"] == "selfhosted"
    assert config["ssoProviders"] == [{"id": str(provider.pk), "domains": ["corp.example.com"]}]
    assert AuditEvent.objects.filter(action="sso.provider.created").exists()
    assert api.delete(f"/sfp/api/sso/providers/{provider.pk}").status_code == 200
    assert not SamlIdentityProvider.objects.exists()
    assert AuditEvent.objects.filter(action="sso.provider.deleted").exists()


def test_application_tokens_are_refused_on_the_provider_api(owner, idp):
    _, raw = app_token_for(owner)
    response = bearer(raw).get("/sfp/api/sso/providers")
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ("<not xml", "well-formed"),
        ("<EntityDescriptor xmlns='urn:oasis:names:tc:SAML:2.0:metadata'/>", "IDPSSODescriptor"),
    ],
)
def test_unparsable_metadata_is_a_clear_400(owner, metadata, message):
    response = bearer(access_token_for(owner)).post(
        "/sfp/api/sso/providers",
        {"metadataXml": metadata, "domains": ["corp.example.com"]},
        format="json",
    )
    assert response.status_code == 400
    assert message in response.json()["message"]


def test_metadata_without_a_signing_certificate_is_a_400(owner, idp):
    root = etree.fromstring(idp.metadata_xml().encode())
    for key in root.findall(".//{urn:oasis:names:tc:SAML:2.0:metadata}KeyDescriptor"):
        key.getparent().remove(key)
    response = bearer(access_token_for(owner)).post(
        "/sfp/api/sso/providers",
        {"metadataXml": etree.tostring(root).decode(), "domains": ["corp.example.com"]},
        format="json",
    )
    assert response.status_code == 400
    assert "signing certificate" in response.json()["message"]


def test_a_domain_belongs_to_one_provider(owner, provider):
    other = SamlTestIdentityProvider(saml.sp_metadata_xml(), entity_id="https://other.test/idp")
    response = bearer(access_token_for(owner)).post(
        "/sfp/api/sso/providers",
        {"metadataXml": other.metadata_xml(), "domains": ["CORP.example.com"]},
        format="json",
    )
    assert response.status_code == 409


# --- accepted logins ------------------------------------------------------------------------


def test_sp_initiated_login_ends_in_a_browser_session(client, idp, provider, owner):
    redirect = client.get("/auth/v1/sso/saml/login", {"email": "Owner@corp.example.com"})
    assert redirect.status_code == 302
    assert redirect["Location"].startswith("https://idp.example.test/saml/sso")
    query = parse_qs(urlsplit(redirect["Location"]).query)
    assert "Signature" in query  # the AuthnRequest is signed (redirect binding)
    request, relay = idp.receive_authn_request(redirect["Location"])
    xml = idp_initiated(idp, in_response_to=request.id)
    response = post_acs(client, xml, relay)
    assert response.status_code == 302, response.content
    assert client.session["_auth_user_id"] == str(owner.pk)
    success = AuditEvent.objects.get(action="login.succeeded", after__method="saml")
    assert success.after["provider"] == provider.entity_id


def test_idp_initiated_login_to_the_cli_loopback_gets_the_token_pair(client, idp, provider):
    response = post_acs(client, idp_initiated(idp), "http://127.0.0.1:54329/callback")
    assert response.status_code == 302, response.content
    target = urlsplit(response["Location"])
    assert (target.hostname, target.port) == ("127.0.0.1", 54329)
    tokens = parse_qs(target.fragment)
    assert tokens["refresh_token"][0].startswith("sfp_rt_")
    callback = client.post(
        "/sfp/api/auth/callback",
        {"access_token": tokens["access_token"][0]},
        content_type="application/json",
    )
    assert callback.json()["data"]["email"] == "owner@corp.example.com"


def test_relay_state_to_another_site_lands_on_the_dashboard(client, idp, provider):
    response = post_acs(client, idp_initiated(idp), "https://evil.example/steal")
    assert response["Location"] == "/"


def test_unknown_user_is_provisioned_only_when_the_provider_allows(client, idp, provider, team):
    refused = post_acs(client, idp_initiated(idp, email="new@corp.example.com"))
    assert refused.status_code == 403
    assert "owner@corp.example.com" in refused.json()["message"]
    assert not User.objects.filter(email="new@corp.example.com").exists()
    provider.provision_team = team
    provider.save()
    accepted = post_acs(client, idp_initiated(idp, email="new@corp.example.com"))
    assert accepted.status_code == 302
    user = User.objects.get(email="new@corp.example.com")
    assert (user.first_name, user.last_name) == ("Ada", "Lovelace")
    assert user.memberships.get().role == TeamRole.MEMBER


# --- refused --------------------------------------------------------------------------------


def test_unsigned_response_and_assertion_is_refused(client, idp, provider):
    xml = idp_initiated(idp, sign_assertion=False, sign_response=False)
    assert_refused(post_acs(client, xml), provider, "not signed")


def test_signed_response_with_unsigned_assertion_is_refused(client, idp, provider):
    xml = idp_initiated(idp, sign_assertion=False, sign_response=True)
    assert_refused(post_acs(client, xml), provider, "assertion")


def test_signature_by_another_key_is_refused(client, provider):
    impostor = SamlTestIdentityProvider(saml.sp_metadata_xml(), key_name="impostor")
    assert_refused(post_acs(client, idp_initiated(impostor)), provider, "signature")


def test_wrong_audience_is_refused(client, idp, provider):
    xml = idp.response(
        email="owner@corp.example.com", sp_entity_id="https://other.sp/", acs_url=ACS
    )
    assert_refused(post_acs(client, xml), provider, "audience")


def test_wrong_destination_is_refused(client, idp, provider):
    xml = idp.response(
        email="owner@corp.example.com", sp_entity_id=SP_ENTITY, acs_url="https://other.sp/acs"
    )
    assert_refused(post_acs(client, xml), provider, "instead of https://other.sp/acs")


def test_expired_and_not_yet_valid_are_refused(client, idp, provider, monkeypatch):
    real_now = OneLogin_Saml2_Utils.now
    xml = idp_initiated(idp)
    monkeypatch.setattr(OneLogin_Saml2_Utils, "now", staticmethod(lambda: real_now() + 86400))
    assert_refused(post_acs(client, xml), provider, "expired")
    monkeypatch.setattr(OneLogin_Saml2_Utils, "now", staticmethod(lambda: real_now() - 86400))
    assert_refused(post_acs(client, idp_initiated(idp)), provider, "not yet valid")


def test_replayed_assertion_is_refused(client, idp, provider):
    xml = idp_initiated(idp)
    assert post_acs(client, xml).status_code == 302
    client.logout()
    assert_refused(post_acs(client, xml), None, "already used")


def test_in_response_to_a_request_never_sent_is_refused(client, idp, provider):
    xml = idp_initiated(idp, in_response_to="id-never-sent")
    assert_refused(post_acs(client, xml), provider, "InResponseTo")


def _assertion(root):
    return root.find("saml:Assertion", NS)


def test_signature_wrapping_with_a_second_assertion_is_refused(client, idp, provider):
    root = etree.fromstring(idp_initiated(idp, email="owner@corp.example.com").encode())
    evil = copy.deepcopy(_assertion(root))
    evil.set("ID", "_evil")
    evil.remove(evil.find("ds:Signature", NS))
    evil.find(".//saml:NameID", NS).text = "intruder@corp.example.com"
    root.insert(list(root).index(_assertion(root)), evil)
    assert_refused(post_acs(client, etree.tostring(root).decode()), provider, "assertion")


def test_signature_wrapping_hiding_the_signed_assertion_inside_is_refused(client, idp, provider):
    root = etree.fromstring(idp_initiated(idp).encode())
    signed = _assertion(root)
    evil = copy.deepcopy(signed)
    evil.set("ID", "_evil")
    evil.remove(evil.find("ds:Signature", NS))
    evil.find(".//saml:NameID", NS).text = "intruder@corp.example.com"
    root.replace(signed, evil)
    evil.find("saml:Subject", NS).append(signed)  # the signed original, nested out of sight
    assert_refused(post_acs(client, etree.tostring(root).decode()), provider, "")
    assert "intruder" not in str(last_failure().after)


def test_comment_injected_in_name_id_does_not_truncate_the_email(client, idp, provider, owner):
    xml = idp_initiated(idp, email="owner@corp.example.com.evil.test")
    xml = xml.replace(
        ">owner@corp.example.com.evil.test<", ">owner@corp.example.com<!---->.evil.test<"
    )
    response = post_acs(client, xml)
    assert_refused(response, provider, "not a domain of this identity provider")


def test_saml_switched_off_answers_404_in_the_error_shape(client, settings):
    settings.SFP_SAML_ENABLED = False
    for response in (
        client.get("/auth/v1/sso/saml/metadata"),
        client.get("/auth/v1/sso/saml/login", {"email": "a@corp.example.com"}),
        client.post(ACS, {"SAMLResponse": "x"}),
    ):
        assert response.status_code == 404
        assert response.json()["statusCode"] == 404


def test_login_for_a_domain_without_provider_and_an_empty_acs_post_are_400(client):
    assert client.get("/auth/v1/sso/saml/login", {"email": "a@nowhere.test"}).status_code == 400
    assert client.post(ACS, {}).status_code == 400
    garbage = client.post(ACS, {"SAMLResponse": "%%%not-base64"})
    assert garbage.status_code == 401
    assert "base64" in garbage.json()["message"]


def test_dashboard_login_asks_for_the_email_and_sends_sso_domains_to_their_idp(client, provider):
    to_idp = client.post("/login", {"email": "owner@corp.example.com", "password": ""})
    assert to_idp.status_code == 302
    assert to_idp["Location"].startswith("/auth/v1/sso/saml/login?email=owner%40corp.example.com")
    idp_redirect = client.get(to_idp["Location"])
    assert idp_redirect["Location"].startswith("https://idp.example.test/saml/sso")
    no_password = client.post("/login", {"email": "someone@elsewhere.test", "password": ""})
    assert no_password.status_code == 200
    assert b"This field is required" in no_password.content
