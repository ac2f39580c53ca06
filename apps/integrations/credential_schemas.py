"""What the credentials of each provider and auth type must contain, checked before sealing.

Published providers with a dedicated client (GitHub, Azure DevOps) and the well-known shapes
(Jira, AI providers) are checked field by field; the other published providers are stored
generically: any non-empty object of non-empty string values.
"""

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from apps.core.exceptions import InvalidRequest
from apps.integrations.models import AuthType, Provider

_GITHUB = {Provider.GITHUB}
_AZURE = {Provider.AZUREDEVOPS, Provider.AZURE_DEVOPS}

REQUIRED_FIELDS: dict[tuple[frozenset, str], tuple[str, ...]] = {
    (frozenset(_GITHUB), AuthType.APP): ("appId", "privateKey", "installationId"),
    (frozenset(_GITHUB), AuthType.PAT): ("token",),
    (frozenset(_AZURE), AuthType.PAT): ("token",),
    (frozenset(_AZURE), AuthType.SERVICE_PRINCIPAL): ("clientId", "clientSecret", "tenantId"),
    (frozenset({Provider.JIRA}), AuthType.BASIC_AUTH): ("email", "apiToken"),
    (frozenset({Provider.JIRA}), AuthType.OAUTH_CLIENT_CREDENTIALS): (
        "clientId",
        "clientSecret",
        "cloudId",
    ),
}
_DEDICATED = _GITHUB | _AZURE


def _fail(message: str, field: str) -> None:
    raise InvalidRequest(message, details={f"credentials.{field}": [message]})


def validate_credentials(provider: str, auth_type: str, credentials: dict, config: dict) -> None:
    """Raise InvalidRequest with a precise, secret-free message when credentials are unusable."""
    if not isinstance(credentials, dict) or not credentials:
        raise InvalidRequest(
            "credentials must be a non-empty object", details={"credentials": ["Required."]}
        )
    for name, value in credentials.items():
        if not isinstance(value, str | int) or (isinstance(value, str) and not value.strip()):
            _fail(f"credentials.{name} must be a non-empty string", name)

    required = next(
        (fields for (providers, kind), fields in REQUIRED_FIELDS.items()
         if provider in providers and kind == auth_type),
        None,
    )  # fmt: skip
    if required is None and provider in _DEDICATED:
        allowed = sorted(kind for (providers, kind) in REQUIRED_FIELDS if provider in providers)
        raise InvalidRequest(
            f"authType {auth_type} is not supported for {provider}; use one of: "
            + ", ".join(allowed),
            details={"authType": [f"One of: {', '.join(allowed)}."]},
        )
    if required is None and provider.startswith("ai_"):
        required = ("apiKey",) if auth_type == AuthType.API_KEY else None
    for name in required or ():
        if name not in credentials:
            _fail(f"credentials.{name} is required for {provider} {auth_type}", name)

    if provider in _GITHUB and auth_type == AuthType.APP:
        for name in ("appId", "installationId"):
            if not str(credentials[name]).isdigit():
                _fail(f"credentials.{name} must be a number", name)
        try:
            key = load_pem_private_key(str(credentials["privateKey"]).encode(), password=None)
        except (ValueError, TypeError):
            key = None
        if not isinstance(key, RSAPrivateKey):
            _fail("credentials.privateKey is not a PEM-encoded RSA private key", "privateKey")
    if provider in _AZURE and not (config or {}).get("organization"):
        raise InvalidRequest(
            "config.organization is required for Azure DevOps",
            details={"config.organization": ["Required."]},
        )
