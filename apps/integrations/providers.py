"""Clients for the source-control providers an integration connects to: credentials in, an
authenticated HTTP client out.

`client_for(provider, auth_type, credentials, config)` turns the stored credentials of an
integration (a GitHub App, a GitHub personal access token, an Azure DevOps personal access token
or an Azure AD service principal) into an `AuthenticatedClient` whose session carries the auth
header; `verify(...)` makes one cheap authenticated call to prove the credentials work. Short-lived
tokens (GitHub App installation tokens, Azure AD tokens) are minted on demand and cached in
process memory until five minutes before they expire, so a client handed out always has at least
that long to live. Every failure, whether at minting or on a later call, becomes a
`ProviderError` whose `kind` says what the operator has to do about it, and whose message never
contains a token, private key or client secret.
"""

import base64
import email.utils
import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from django.conf import settings

TIMEOUT_SECONDS = 10
# A cached token is handed out only while it has at least this long to live.
TOKEN_REUSE_MARGIN_SECONDS = 5 * 60
AZURE_DEVOPS_SCOPE = "499b84ac-1321-427f-aa17-267ca6975798/.default"
AZURE_DEVOPS_API_VERSION = "7.1"
GITHUB_API_VERSION = "2022-11-28"
USER_AGENT = "sfpserver"

ERROR_KINDS = frozenset({"bad_credentials", "not_found", "rate_limited", "unavailable", "invalid"})
_PROVIDER_ALIASES = {
    "github": "github",
    "azuredevops": "azuredevops",
    "azure-devops": "azuredevops",
}
_SERVICE_NAMES = {"github": "GitHub", "azuredevops": "Azure DevOps", "azuread": "Azure AD"}
# Upstream error text is quoted in messages; this bounds how much.
_UPSTREAM_TEXT_LIMIT = 300
_PATH_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class ProviderError(Exception):
    """A provider call failed. `kind` is one of ERROR_KINDS; `message` is safe to show a user."""

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        provider: str | None = None,
        upstream_status: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown ProviderError kind {kind!r}")
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.provider = provider
        self.upstream_status = upstream_status
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (
            f"ProviderError(kind={self.kind!r}, message={self.message!r}, "
            f"upstream_status={self.upstream_status!r}, retry_after={self.retry_after!r})"
        )


@dataclass
class AuthenticatedClient:
    """An HTTP client for one provider account; `session` carries the auth header.

    `get` and `post` take a path relative to `base_url` (or an absolute URL on the same origin),
    apply a 10 s timeout and raise ProviderError for any answer of 400 or above, for redirects to
    a sign-in page, and for network failures.
    """

    provider: str
    base_url: str
    session: requests.Session
    # What authenticates the calls, for messages: "the installation token of installation 42".
    credential: str = "the credentials"
    sensitive_values: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = self._url(path)
        kwargs.setdefault("timeout", TIMEOUT_SECONDS)
        if self.provider == "azuredevops":
            # Azure DevOps answers a rejected credential with a redirect to its sign-in page;
            # following it would turn the rejection into an HTML 200.
            kwargs.setdefault("allow_redirects", False)
        label = f"{method} {urlsplit(url).path}"
        response = _send(
            lambda: self.session.request(method, url, **kwargs),
            service=self.provider,
            target=self.base_url,
            sensitive=self.sensitive_values,
        )
        _raise_for_failure(
            response,
            service=self.provider,
            label=label,
            rejected=f"{_SERVICE_NAMES[self.provider]} rejected {self.credential}",
            sensitive=self.sensitive_values,
        )
        return response

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            wanted, given = urlsplit(self.base_url), urlsplit(path)
            if (given.scheme, given.netloc) != (wanted.scheme, wanted.netloc):
                raise ProviderError(
                    f"Refusing to send {_SERVICE_NAMES[self.provider]} credentials to "
                    f"{given.scheme}://{given.netloc}",
                    kind="invalid",
                    provider=self.provider,
                )
            return path
        return f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"

    def __repr__(self) -> str:
        return (
            f"AuthenticatedClient(provider={self.provider!r}, base_url={self.base_url!r}, "
            f"credential={self.credential!r})"
        )

    __str__ = __repr__


def client_for(
    provider: str, auth_type: str, credentials: dict, config: dict | None = None
) -> AuthenticatedClient:
    """An authenticated client for the account the credentials give access to."""
    config = config or {}
    credentials = credentials or {}
    normalized = _PROVIDER_ALIASES.get((provider or "").strip().lower())
    if normalized == "github" and auth_type == "app":
        return _github_app_client(credentials, config)
    if normalized == "github" and auth_type == "pat":
        return _github_pat_client(credentials, config)
    if normalized == "azuredevops" and auth_type == "pat":
        return _azure_devops_pat_client(credentials, config)
    if normalized == "azuredevops" and auth_type == "service_principal":
        return _azure_devops_service_principal_client(credentials, config)
    raise ProviderError(
        f"No client for provider {provider} with auth type {auth_type}", kind="invalid"
    )


def git_http_authorization(
    provider: str, auth_type: str, credentials: dict, config: dict | None = None
) -> str:
    """The `Authorization` header git sends to clone over HTTPS with these credentials: Basic
    `x-access-token:<token>` on GitHub (App installation token or PAT), Basic `:<PAT>` on Azure
    DevOps, Bearer with a service principal's Azure AD token. Tokens are minted and cached as
    for API calls."""
    client = client_for(provider, auth_type, credentials, config)
    token = client.sensitive_values[0]
    if client.provider == "github":
        return "Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()
    if auth_type == "pat":
        return "Basic " + base64.b64encode(f":{token}".encode()).decode()
    return f"Bearer {token}"


def verify(provider: str, auth_type: str, credentials: dict, config: dict | None = None) -> dict:
    """Prove the credentials work with one cheap call; describe the account that answered."""
    client = client_for(provider, auth_type, credentials, config)
    if client.provider == "github" and auth_type == "app":
        body = _json(client.get("/installation/repositories", params={"per_page": 1}), client)
        repositories = body.get("repositories") or []
        owner = (repositories[0].get("owner") or {}) if repositories else {}
        return {
            "provider": "github",
            "auth_type": "app",
            "installation_id": str(credentials["installationId"]).strip(),
            "account": owner.get("login"),
            "repositories": body.get("total_count"),
        }
    if client.provider == "github":
        body = _json(client.get("/user"), client)
        return {"provider": "github", "auth_type": "pat", "account": body.get("login")}
    organization = client.base_url.rstrip("/").rsplit("/", 1)[-1]
    response = client.get(
        "/_apis/projects", params={"api-version": AZURE_DEVOPS_API_VERSION, "$top": 1}
    )
    _json(response, client)
    return {"provider": "azuredevops", "auth_type": auth_type, "account": organization}


def clear_token_cache() -> None:
    """Forget every cached installation and Azure AD token (tests; credential rotation)."""
    with _cache_lock:
        _token_cache.clear()


# --- GitHub ---------------------------------------------------------------------------------


def _github_api_url(config: dict) -> str:
    default = getattr(settings, "SFP_GITHUB_API_URL", "https://api.github.com")
    return str(config.get("apiUrl") or default).rstrip("/")


def _github_session() -> requests.Session:
    session = requests.Session()
    session.headers.update(
        {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": GITHUB_API_VERSION,
            "User-Agent": USER_AGENT,
        }
    )
    return session


def _github_pat_client(credentials: dict, config: dict) -> AuthenticatedClient:
    token = _required(
        credentials, "token", what="A GitHub personal access token", provider="github"
    )
    session = _github_session()
    session.headers["Authorization"] = f"Bearer {token}"
    return AuthenticatedClient(
        provider="github",
        base_url=_github_api_url(config),
        session=session,
        credential="the personal access token",
        sensitive_values=(token,),
    )


def github_installation_token(credentials: dict, config: dict | None = None) -> "IssuedToken":
    """A GitHub App installation token with its expiry, minted or reused from the cache (it is
    handed out only while it has at least `TOKEN_REUSE_MARGIN_SECONDS` to live)."""
    config = config or {}
    missing = [k for k in ("appId", "privateKey", "installationId") if not credentials.get(k)]
    if missing:
        raise ProviderError(
            f"GitHub App credentials need appId, privateKey and installationId "
            f"(missing: {', '.join(missing)})",
            kind="invalid",
            provider="github",
        )
    app_id = str(credentials["appId"]).strip()
    installation_id = str(credentials["installationId"]).strip()
    if not installation_id.isdigit():
        raise ProviderError(
            "GitHub App installationId must be a number", kind="invalid", provider="github"
        )
    private_key = _load_rsa_private_key(credentials["privateKey"])
    api_url = _github_api_url(config)
    # The key's fingerprint is part of the cache key so that a wrong key never gets a token
    # that the right key minted earlier.
    public_der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    cache_key = ("github", api_url, app_id, installation_id, hashlib.sha256(public_der).hexdigest())
    return _cached_token(
        cache_key,
        lambda: _mint_installation_token(api_url, app_id, installation_id, private_key),
    )


def _github_app_client(credentials: dict, config: dict) -> AuthenticatedClient:
    token = github_installation_token(credentials, config).value
    installation_id = str(credentials["installationId"]).strip()
    session = _github_session()
    session.headers["Authorization"] = f"token {token}"
    return AuthenticatedClient(
        provider="github",
        base_url=_github_api_url(config),
        session=session,
        credential=f"the installation token of installation {installation_id}",
        sensitive_values=(token,),
    )


def _load_rsa_private_key(pem: object) -> RSAPrivateKey:
    invalid = ProviderError(
        "GitHub App private key is not a valid PEM RSA key", kind="invalid", provider="github"
    )
    if not isinstance(pem, str):
        raise invalid
    text = pem.strip()
    if "\\n" in text and "\n" not in text:
        # Keys pasted through environment variables often arrive with escaped newlines.
        text = text.replace("\\n", "\n")
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise invalid from None
    if not isinstance(key, RSAPrivateKey):
        raise invalid
    return key


def _mint_installation_token(
    api_url: str, app_id: str, installation_id: str, private_key: RSAPrivateKey
) -> tuple[str, float]:
    now = int(time.time())
    # iat is backdated a minute to absorb clock drift; GitHub refuses exp more than 10 min out.
    app_jwt = jwt.encode(
        {"iat": now - 60, "exp": now + 9 * 60, "iss": app_id}, private_key, algorithm="RS256"
    )
    session = _github_session()
    session.headers["Authorization"] = f"Bearer {app_jwt}"
    url = f"{api_url}/app/installations/{installation_id}/access_tokens"
    with session:
        response = _send(
            lambda: session.post(url, timeout=TIMEOUT_SECONDS),
            service="github",
            target=api_url,
            sensitive=(app_jwt,),
        )
    _raise_for_failure(
        response,
        service="github",
        label=f"POST {urlsplit(url).path}",
        rejected="GitHub rejected the App JWT: check the App id and private key",
        missing=f"GitHub App installation {installation_id} not found or revoked",
        sensitive=(app_jwt,),
    )
    body = _json_body(response, service="github", label="the installation token request")
    token = body.get("token")
    if not isinstance(token, str) or not token:
        raise ProviderError(
            "GitHub answered the installation token request without a token",
            kind="unavailable",
            provider="github",
            upstream_status=response.status_code,
        )
    return token, _parse_timestamp(body.get("expires_at"))


def _parse_timestamp(value: object) -> float:
    """Epoch seconds of an ISO 8601 time; an unreadable one counts as already expired."""
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


# --- Azure DevOps and Azure AD --------------------------------------------------------------


def _azure_devops_base_url(config: dict) -> str:
    organization = str(config.get("organization") or "").strip()
    if not organization:
        raise ProviderError(
            "Azure DevOps needs config.organization (the name in dev.azure.com/<organization>)",
            kind="invalid",
            provider="azuredevops",
        )
    if not _PATH_SEGMENT.match(organization):
        raise ProviderError(
            f"Azure DevOps organization {organization!r} is not a valid organization name",
            kind="invalid",
            provider="azuredevops",
        )
    default = getattr(settings, "SFP_AZURE_DEVOPS_URL", "https://dev.azure.com")
    return f"{str(config.get('baseUrl') or default).rstrip('/')}/{organization}"


def _azure_devops_session() -> requests.Session:
    session = requests.Session()
    session.headers.update({"Accept": "application/json", "User-Agent": USER_AGENT})
    return session


def _azure_devops_pat_client(credentials: dict, config: dict) -> AuthenticatedClient:
    token = _required(
        credentials, "token", what="An Azure DevOps personal access token", provider="azuredevops"
    )
    base_url = _azure_devops_base_url(config)
    session = _azure_devops_session()
    session.auth = ("", token)
    return AuthenticatedClient(
        provider="azuredevops",
        base_url=base_url,
        session=session,
        credential=f"the personal access token for organization {base_url.rsplit('/', 1)[-1]}",
        sensitive_values=(token,),
    )


def _azure_devops_service_principal_client(credentials: dict, config: dict) -> AuthenticatedClient:
    what = "An Azure AD service principal"
    client_id = _required(credentials, "clientId", what=what, provider="azuredevops")
    client_secret = _required(credentials, "clientSecret", what=what, provider="azuredevops")
    tenant_id = _required(credentials, "tenantId", what=what, provider="azuredevops")
    if not _PATH_SEGMENT.match(tenant_id):
        raise ProviderError(
            f"Azure AD tenant id {tenant_id!r} is not a valid tenant id or domain",
            kind="invalid",
            provider="azuredevops",
        )
    base_url = _azure_devops_base_url(config)
    default_login = getattr(settings, "SFP_AZURE_AD_LOGIN_URL", "https://login.microsoftonline.com")
    login_url = str(config.get("loginUrl") or default_login).rstrip("/")
    secret_digest = hashlib.sha256(client_secret.encode()).hexdigest()
    token = _cached_token(
        ("azuread", login_url, tenant_id, client_id, secret_digest),
        lambda: _mint_azure_ad_token(login_url, tenant_id, client_id, client_secret),
    ).value
    session = _azure_devops_session()
    session.headers["Authorization"] = f"Bearer {token}"
    return AuthenticatedClient(
        provider="azuredevops",
        base_url=base_url,
        session=session,
        credential=f"the Azure AD token of service principal {client_id}",
        sensitive_values=(token, client_secret),
    )


def _mint_azure_ad_token(
    login_url: str, tenant_id: str, client_id: str, client_secret: str
) -> tuple[str, float]:
    url = f"{login_url}/{tenant_id}/oauth2/v2.0/token"
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": client_secret,
        "scope": AZURE_DEVOPS_SCOPE,
    }
    started = time.time()
    response = _send(
        lambda: requests.post(
            url,
            data=form,
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            timeout=TIMEOUT_SECONDS,
        ),
        service="azuread",
        target=login_url,
        sensitive=(client_secret,),
    )
    sensitive = (client_secret,)
    if response.status_code in (400, 401):
        detail = _upstream_detail(response, service="azuread", sensitive=sensitive)
        raise ProviderError(
            f"Azure AD rejected the client credentials of service principal {client_id} "
            f"in tenant {tenant_id}" + (f": {detail}" if detail else ""),
            kind="bad_credentials",
            provider="azuredevops",
            upstream_status=response.status_code,
        )
    _raise_for_failure(
        response,
        service="azuread",
        label=f"POST {urlsplit(url).path}",
        rejected=f"Azure AD rejected service principal {client_id}",
        sensitive=sensitive,
    )
    body = _json_body(response, service="azuread", label="the token request")
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise ProviderError(
            "Azure AD answered the token request without an access token",
            kind="unavailable",
            provider="azuredevops",
            upstream_status=response.status_code,
        )
    try:
        lifetime = int(body.get("expires_in") or 0)
    except (TypeError, ValueError):
        lifetime = 0
    return token, started + lifetime


# --- shared plumbing ------------------------------------------------------------------------


@dataclass
class IssuedToken:
    value: str = field(repr=False)  # a secret: never in logs or tracebacks
    expires_at: float  # epoch seconds


_token_cache: dict[tuple, IssuedToken] = {}
_cache_lock = threading.Lock()
# One lock per cache key: concurrent callers for the same account mint once, while callers for
# other accounts are not held up by a slow token endpoint.
_mint_locks: dict[tuple, threading.Lock] = {}


def _cached_token(key: tuple, mint: Callable[[], tuple[str, float]]) -> IssuedToken:
    with _cache_lock:
        mint_lock = _mint_locks.setdefault(key, threading.Lock())
    with mint_lock:
        with _cache_lock:
            cached = _token_cache.get(key)
        if cached is not None and cached.expires_at - TOKEN_REUSE_MARGIN_SECONDS > time.time():
            return cached
        value, expires_at = mint()
        issued = IssuedToken(value, expires_at)
        with _cache_lock:
            _token_cache[key] = issued
        return issued


def _required(credentials: dict, name: str, *, what: str, provider: str) -> str:
    value = credentials.get(name)
    if not isinstance(value, str | int) or not str(value).strip():
        raise ProviderError(f"{what} needs credentials.{name}", kind="invalid", provider=provider)
    return str(value).strip()


def _send(
    call: Callable[[], requests.Response],
    *,
    service: str,
    target: str,
    sensitive: Iterable[str],
) -> requests.Response:
    try:
        return call()
    except requests.Timeout:
        reason = f"no answer within {TIMEOUT_SECONDS} s"
    except requests.RequestException as error:
        reason = _network_reason(error)
    raise ProviderError(
        _scrub(f"Could not reach {_SERVICE_NAMES[service]} at {target}: {reason}", sensitive),
        kind="unavailable",
        provider=_provider_of(service),
    )


def _network_reason(error: requests.RequestException) -> str:
    text = str(error)
    # requests nests the socket error several exceptions deep; its errno text is the useful part.
    match = re.search(r"\[Errno -?\d+\] ([^'\"\)]+)", text)
    if match:
        return match.group(1).strip().lower()
    if isinstance(error, requests.exceptions.SSLError):
        return "TLS handshake failed"
    return type(error).__name__


def _raise_for_failure(
    response: requests.Response,
    *,
    service: str,
    label: str,
    rejected: str,
    missing: str | None = None,
    sensitive: Iterable[str] = (),
) -> None:
    status = response.status_code
    name = _SERVICE_NAMES[service]
    provider = _provider_of(service)
    detail = _upstream_detail(response, service=service, sensitive=sensitive)
    with_detail = f" ({name} said: {detail})" if detail else ""

    def fail(message: str, kind: str, retry_after: int | None = None) -> ProviderError:
        return ProviderError(
            _scrub(message, sensitive),
            kind=kind,
            provider=provider,
            upstream_status=status,
            retry_after=retry_after,
        )

    retry_after = _rate_limit_retry_after(response, service=service)
    if retry_after is not None:
        raise fail(
            f"{name} rate limit reached on {label}; retry in {retry_after} s{with_detail}",
            "rate_limited",
            retry_after,
        )
    if service == "azuredevops" and _is_sign_in_answer(response):
        raise fail(f"{rejected} (it answered with its sign-in page)", "bad_credentials")
    if status < 400:
        return
    if status == 401:
        raise fail(f"{rejected}{with_detail}", "bad_credentials")
    if status == 403:
        raise fail(f"{rejected} for {label}{with_detail}", "bad_credentials")
    if status == 404:
        raise fail(missing or f"{name} answered 404 Not Found to {label}", "not_found")
    if status >= 500:
        raise fail(f"{name} is unavailable: HTTP {status} on {label}{with_detail}", "unavailable")
    raise fail(f"{name} refused {label}: HTTP {status}{with_detail}", "invalid")


def _rate_limit_retry_after(response: requests.Response, *, service: str) -> int | None:
    """Seconds to wait when the answer is a rate limit, else None."""
    status, headers = response.status_code, response.headers
    retry_after = _seconds_from_retry_after(headers.get("Retry-After"))
    if service == "github":
        exhausted = headers.get("x-ratelimit-remaining") == "0"
        # GitHub's secondary limits answer 403/429 with Retry-After but without a zero budget.
        if status not in (403, 429) or not (exhausted or retry_after is not None or status == 429):
            return None
        if retry_after is not None:
            return retry_after
        reset = headers.get("x-ratelimit-reset", "")
        if reset.isdigit():
            return max(1, int(reset) - int(time.time()))
        return 60
    if service == "azuredevops" and (status == 429 or (status == 503 and retry_after is not None)):
        return retry_after if retry_after is not None else 60
    return None


def _seconds_from_retry_after(value: str | None) -> int | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return max(1, int(value))
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(1, int(moment.timestamp() - time.time()))


def _is_sign_in_answer(response: requests.Response) -> bool:
    if response.status_code == 203:
        return True
    location = response.headers.get("Location", "")
    return response.is_redirect and "signin" in location.lower()


def _upstream_detail(
    response: requests.Response, *, service: str, sensitive: Iterable[str] = ()
) -> str:
    """The provider's own short explanation of an error answer, if it gave one."""
    try:
        body = response.json()
    except ValueError:
        return ""
    text = ""
    if isinstance(body, dict):
        if service == "azuread":
            text = str(body.get("error_description") or body.get("error") or "")
        else:
            text = str(body.get("message") or "")
    # Azure AD appends trace and correlation ids on further lines; the first line is the reason.
    text = text.strip().splitlines()[0] if text.strip() else ""
    if len(text) > _UPSTREAM_TEXT_LIMIT:
        text = text[: _UPSTREAM_TEXT_LIMIT - 1] + "…"
    return _scrub(text, sensitive)


def _json(response: requests.Response, client: AuthenticatedClient) -> dict:
    label = f"{response.request.method} {urlsplit(response.url).path}"
    return _json_body(response, service=client.provider, label=label)


def _json_body(response: requests.Response, *, service: str, label: str) -> dict:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ProviderError(
            f"{_SERVICE_NAMES[service]} answered {label} with something other than a JSON object",
            kind="unavailable",
            provider=_provider_of(service),
            upstream_status=response.status_code,
        )
    return body


def _provider_of(service: str) -> str:
    return "azuredevops" if service == "azuread" else service


def _scrub(text: str, sensitive: Iterable[str]) -> str:
    for value in sensitive:
        if value:
            text = text.replace(value, "***")
    return text
