"""Single sign-on settings: the SAML service provider (on by default) and its public address.

The SP entity id and ACS URL are fixed paths under `SFP_PUBLIC_URL` (the address browsers and
identity providers reach this server by): `/auth/v1/sso/saml/metadata` and `/auth/v1/sso/saml/acs`.
"""

from sfpserver.env import env

SFP_PUBLIC_URL = env.str("SFP_PUBLIC_URL", default="http://localhost:8000").rstrip("/")
SFP_SAML_ENABLED = env.bool("SFP_SAML_ENABLED", default=True)
# How long an AuthnRequest id is accepted back as InResponseTo.
SFP_SAML_REQUEST_TTL_SECONDS = env.int("SFP_SAML_REQUEST_TTL_SECONDS", default=600)
# Timeout for downloading an identity provider's federation metadata.
SFP_SAML_METADATA_TIMEOUT_SECONDS = env.int("SFP_SAML_METADATA_TIMEOUT_SECONDS", default=10)
