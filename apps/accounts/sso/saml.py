"""The SAML service provider, built on python3-saml.

Fixed published URLs: the SP entity id is `<SFP_PUBLIC_URL>/auth/v1/sso/saml/metadata` and the
assertion consumer service `<SFP_PUBLIC_URL>/auth/v1/sso/saml/acs`. AuthnRequests are signed with
the SP's newest unretired key; responses must carry a signed assertion. Every response is checked
in strict mode (signature, audience, destination/recipient, validity window) and then against this
server's own records: InResponseTo must name a request it sent to that provider (once), and an
assertion id is accepted once until the assertion expires.
"""

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from lxml import etree
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

from apps.accounts.sso.models import (
    SamlAssertionSeen,
    SamlIdentityProvider,
    SamlRequestSent,
    SamlSigningKey,
)
from apps.integrations.vault import seal_for, unseal_from

METADATA_PATH = "/auth/v1/sso/saml/metadata"
ACS_PATH = "/auth/v1/sso/saml/acs"
_NS = {"samlp": OneLogin_Saml2_Constants.NS_SAMLP, "saml": OneLogin_Saml2_Constants.NS_SAML}


class SamlRefused(Exception):
    """A SAML response that does not sign anyone in; `reason` is safe to show and audit."""

    def __init__(self, reason: str, provider: SamlIdentityProvider | None = None):
        super().__init__(reason)
        self.reason = reason
        self.provider = provider


class MetadataInvalid(Exception):
    """Identity-provider metadata that cannot be used; the message says why."""


def sp_entity_id() -> str:
    return settings.SFP_PUBLIC_URL + METADATA_PATH


def sp_acs_url() -> str:
    return settings.SFP_PUBLIC_URL + ACS_PATH


# --- the SP's signing keys ------------------------------------------------------------------


def _new_key_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, urlsplit(sp_entity_id()).hostname)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return pem_key, certificate.public_bytes(serialization.Encoding.PEM).decode()


def _published_keys() -> list[SamlSigningKey]:
    return list(SamlSigningKey.objects.filter(retired_at__isnull=True).order_by("-created_at"))


@transaction.atomic
def signing_key_create() -> SamlSigningKey:
    """A new key pair; it signs from now on, and older unretired keys stay published."""
    pem_key, pem_certificate = _new_key_pair()
    return SamlSigningKey.objects.create(
        private_key=seal_for(SamlSigningKey, "private_key", pem_key), certificate=pem_certificate
    )


def signing_key_ensure() -> SamlSigningKey:
    """The signing key, generated on first use (the embedded default and `saml_init`)."""
    with transaction.atomic():
        # One generator at a time: concurrent first requests must not create two keys.
        SamlSigningKey.objects.select_for_update().filter(retired_at__isnull=True).exists()
        published = _published_keys()
        if published:
            return published[0]
        return signing_key_create()


def signing_key_retire_older() -> int:
    """End the overlap: retire every key but the newest. Returns how many were retired."""
    published = _published_keys()
    return SamlSigningKey.objects.filter(pk__in=[k.pk for k in published[1:]]).update(
        retired_at=timezone.now()
    )


# --- python3-saml settings ------------------------------------------------------------------


def _security() -> dict:
    return {
        "authnRequestsSigned": True,
        "wantAssertionsSigned": True,
        "wantMessagesSigned": False,
        "wantNameId": True,
        "wantAttributeStatement": False,
        "requestedAuthnContext": False,
        "rejectDeprecatedAlgorithm": True,
        "rejectUnsolicitedResponsesWithInResponseTo": True,
        "signatureAlgorithm": OneLogin_Saml2_Constants.RSA_SHA256,
        "digestAlgorithm": OneLogin_Saml2_Constants.SHA256,
    }


def _sp_settings() -> dict:
    signer = signing_key_ensure()
    sp = {
        "entityId": sp_entity_id(),
        "assertionConsumerService": {
            "url": sp_acs_url(),
            "binding": OneLogin_Saml2_Constants.BINDING_HTTP_POST,
        },
        "NameIDFormat": OneLogin_Saml2_Constants.NAMEID_EMAIL_ADDRESS,
        "x509cert": signer.certificate,
        "privateKey": unseal_from(signer, "private_key").value,
    }
    others = [k for k in _published_keys() if k.pk != signer.pk]
    if others:  # the overlap of a rotation: the previous certificate stays published
        sp["x509certNew"] = others[0].certificate
    return sp


def _settings_for(provider: SamlIdentityProvider | None) -> dict:
    config = {"strict": True, "debug": False, "sp": _sp_settings(), "security": _security()}
    if provider is not None:
        config["idp"] = {
            "entityId": provider.entity_id,
            "singleSignOnService": {
                "url": provider.sso_url,
                "binding": OneLogin_Saml2_Constants.BINDING_HTTP_REDIRECT,
            },
            "x509certMulti": {"signing": list(provider.signing_certificates)},
        }
    return config


def sp_metadata_xml() -> str:
    saml_settings = OneLogin_Saml2_Settings(_settings_for(None), sp_validation_only=True)
    metadata = saml_settings.get_sp_metadata()
    return metadata.decode() if isinstance(metadata, bytes) else metadata


def _request_data(post: dict | None = None, get: dict | None = None) -> dict:
    """python3-saml's view of the request, built from the public URL (so checks of Destination
    and Recipient hold behind a proxy)."""
    public = urlsplit(settings.SFP_PUBLIC_URL)
    return {
        "https": "on" if public.scheme == "https" else "off",
        "http_host": public.hostname,
        "server_port": public.port or (443 if public.scheme == "https" else 80),
        "script_name": ACS_PATH,
        "get_data": get or {},
        "post_data": post or {},
    }


# --- identity-provider metadata -------------------------------------------------------------


@dataclass
class IdentityProviderMetadata:
    entity_id: str
    sso_url: str
    signing_certificates: list[str]


def metadata_parse(xml: str) -> IdentityProviderMetadata:
    """Entity id, redirect-binding SSO URL and signing certificates, or `MetadataInvalid`."""
    try:
        parsed = OneLogin_Saml2_IdPMetadataParser.parse(xml)
    except etree.XMLSyntaxError as error:
        raise MetadataInvalid(f"metadata is not well-formed XML: {error}") from None
    except ValueError as error:  # a DTD or entity declaration (refused by python3-saml's parser)
        raise MetadataInvalid(f"metadata cannot be read: {error!r}") from None
    idp = parsed.get("idp") or {}
    entity_id = idp.get("entityId")
    sso_url = (idp.get("singleSignOnService") or {}).get("url")
    certificates = list((idp.get("x509certMulti") or {}).get("signing") or [])
    if not certificates and idp.get("x509cert"):
        certificates = [idp["x509cert"]]
    if not entity_id:
        raise MetadataInvalid("metadata has no IDPSSODescriptor with an entityID")
    if not sso_url:
        raise MetadataInvalid("metadata has no HTTP-Redirect SingleSignOnService")
    if not certificates:
        raise MetadataInvalid("metadata has no signing certificate")
    return IdentityProviderMetadata(entity_id, sso_url, certificates)


# --- login ----------------------------------------------------------------------------------


def login_url(*, provider: SamlIdentityProvider, relay_state: str, email: str = "") -> str:
    """The IdP URL carrying a signed AuthnRequest; its id is remembered for InResponseTo."""
    auth = OneLogin_Saml2_Auth(_request_data(), old_settings=_settings_for(provider))
    url = auth.login(return_to=relay_state, name_id_value_req=email or None)
    SamlRequestSent.objects.create(
        request_id=auth.get_last_request_id(),
        provider=provider,
        expires_at=timezone.now() + timedelta(seconds=settings.SFP_SAML_REQUEST_TTL_SECONDS),
    )
    return url


@dataclass
class SamlIdentity:
    provider: SamlIdentityProvider
    email: str
    attributes: dict


def _decoded_response(raw: str) -> etree._Element:
    try:
        return OneLogin_Saml2_XML.to_etree(base64.b64decode(raw))
    except (binascii.Error, ValueError, etree.XMLSyntaxError):
        raise SamlRefused("SAMLResponse is not a base64-encoded XML document") from None


def _issuing_provider(root: etree._Element) -> SamlIdentityProvider:
    issuers = {i.text.strip() for i in root.xpath("/samlp:Response/saml:Issuer", namespaces=_NS)}
    issuers |= {
        i.text.strip()
        for i in root.xpath("/samlp:Response/saml:Assertion/saml:Issuer", namespaces=_NS)
        if i.text
    }
    if len(issuers) != 1:
        raise SamlRefused("response must name exactly one issuer")
    issuer = issuers.pop()
    provider = SamlIdentityProvider.objects.filter(entity_id=issuer).first()
    if provider is None:
        raise SamlRefused(f"issuer {issuer} is not a registered identity provider")
    return provider


def _claim_request(root: etree._Element, provider: SamlIdentityProvider) -> str | None:
    """The AuthnRequest this response answers (consumed), or None for an IdP-initiated login."""
    in_response_to = root.get("InResponseTo")
    if not in_response_to:
        return None
    claimed = SamlRequestSent.objects.filter(
        request_id=in_response_to, provider=provider, expires_at__gt=timezone.now()
    ).delete()[0]
    if not claimed:
        raise SamlRefused("InResponseTo names no pending request sent to this provider", provider)
    return in_response_to


def _remember_assertion(assertion_id: str, not_on_or_after: int | None) -> None:
    SamlAssertionSeen.objects.filter(expires_at__lte=timezone.now()).delete()
    if not_on_or_after:
        expires_at = datetime.fromtimestamp(not_on_or_after, tz=UTC)
    else:
        expires_at = timezone.now() + timedelta(seconds=settings.SFP_SAML_REQUEST_TTL_SECONDS)
    try:
        with transaction.atomic():
            SamlAssertionSeen.objects.create(assertion_id=assertion_id, expires_at=expires_at)
    except IntegrityError:
        raise SamlRefused(f"assertion {assertion_id} was already used") from None


def acs_consume(*, saml_response: str, relay_state: str = "") -> SamlIdentity:
    """Validate a posted SAMLResponse and return whom it identifies, or raise `SamlRefused`."""
    root = _decoded_response(saml_response)
    provider = _issuing_provider(root)
    request_id = _claim_request(root, provider)
    auth = OneLogin_Saml2_Auth(
        _request_data(post={"SAMLResponse": saml_response, "RelayState": relay_state}),
        old_settings=_settings_for(provider),
    )
    auth.process_response(request_id=request_id)
    if auth.get_errors() or not auth.is_authenticated():
        raise SamlRefused(auth.get_last_error_reason() or "response is not valid", provider)
    _remember_assertion(auth.get_last_assertion_id(), auth.get_last_assertion_not_on_or_after())
    return SamlIdentity(
        provider=provider, email=auth.get_nameid().strip().lower(), attributes=auth.get_attributes()
    )
