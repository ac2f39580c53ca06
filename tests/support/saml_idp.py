"""An in-process SAML identity provider built with pysaml2, signing real assertions.

It reads the SP's real metadata, parses the SP's signed AuthnRequests and answers with responses
signed by its own key (through the xmlsec1 binary, as pysaml2 does in production). Options let a
test ask for what a hostile or broken IdP would send: no signatures, another audience or
destination, an InResponseTo of its choosing.
"""

import base64
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server

IDP_ENTITY_ID = "https://idp.example.test/saml/metadata"
IDP_SSO_URL = "https://idp.example.test/saml/sso"


def _key_pair(folder: Path, name: str) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_file, cert_file = folder / f"{name}.key", folder / f"{name}.crt"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return str(key_file), str(cert_file)


class SamlTestIdentityProvider:
    """One pysaml2 IdP trusting the SP metadata it is given."""

    def __init__(self, sp_metadata: str, *, entity_id: str = IDP_ENTITY_ID, key_name: str = "idp"):
        self._folder = Path(tempfile.mkdtemp(prefix="saml-idp-"))
        key_file, cert_file = _key_pair(self._folder, key_name)
        self.config = IdPConfig()
        self.config.load(
            {
                "entityid": entity_id,
                "service": {
                    "idp": {
                        "endpoints": {
                            "single_sign_on_service": [(IDP_SSO_URL, BINDING_HTTP_REDIRECT)]
                        },
                        "policy": {"default": {"lifetime": {"minutes": 5}}},
                        "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                    }
                },
                "key_file": key_file,
                "cert_file": cert_file,
                "metadata": {"inline": [sp_metadata]},
                "xmlsec_binary": "/usr/bin/xmlsec1",
                "signing_algorithm": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                "digest_algorithm": "http://www.w3.org/2001/04/xmlenc#sha256",
            }
        )
        self.server = Server(config=self.config)

    def metadata_xml(self) -> str:
        return create_metadata_string(None, config=self.config, sign=False).decode()

    def receive_authn_request(self, redirect_url: str):
        """The SP's AuthnRequest from the redirect URL it sent the browser to (signature checked)."""
        query = parse_qs(urlsplit(redirect_url).query)
        parsed = self.server.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT)
        return parsed.message, query.get("RelayState", [""])[0]

    def response(
        self,
        *,
        email: str,
        sp_entity_id: str,
        acs_url: str,
        in_response_to: str | None = None,
        sign_response: bool = False,
        sign_assertion: bool = True,
        attributes: dict | None = None,
    ) -> str:
        """A SAML Response (XML text) asserting `email` as NameID."""
        response = self.server.create_authn_response(
            identity=attributes or {"givenName": ["Ada"], "sn": ["Lovelace"]},
            in_response_to=in_response_to,
            destination=acs_url,
            sp_entity_id=sp_entity_id,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=email),
            userid=email,
            authn={
                "class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
                "authn_auth": IDP_ENTITY_ID,
            },
            sign_response=sign_response,
            sign_assertion=sign_assertion,
            binding=BINDING_HTTP_POST,
            sign_alg="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            digest_alg="http://www.w3.org/2001/04/xmlenc#sha256",
        )
        return str(response)


def encoded(xml: str) -> str:
    return base64.b64encode(xml.encode()).decode()
