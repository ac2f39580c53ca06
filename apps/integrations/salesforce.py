"""The Salesforce OAuth side of the org registry: read an SFDX auth URL, turn its refresh token
into a session, and find out which org and user it belongs to.

An SFDX auth URL (`force://<clientId>:<clientSecret>:<refreshToken>@<instance>`, as printed by
`sf org display --verbose`) is the credential an org is registered with. `parse_auth_url` checks
it without any network call; `connect` exchanges the refresh token at the instance's token
endpoint, reads the identity URL and the Organization record, and returns an `OrgIdentity`.
Instances are reached over https and must be Salesforce hosts, except the `host:port` entries of
the `SFP_SALESFORCE_INSECURE_HOSTS` setting (local fakes and scratch proxies), which may use plain
http. Nothing here puts a refresh token, client secret or access token into a message or repr.
"""

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings

TIMEOUT_SECONDS = 10
API_VERSION = "v60.0"
ORGANIZATION_QUERY = "SELECT Id,Name,IsSandbox,OrganizationType,InstanceName FROM Organization"
SALESFORCE_DOMAINS = (
    "salesforce.com",
    "force.com",
    "salesforce.mil",
    "cloudforce.com",
    "sfcrmproducts.cn",
)
_SCHEME = "force://"
_HOST = re.compile(
    r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::\d{1,5})?$"
)
_MASK = "***"
# Salesforce error text is quoted in messages; this bounds how much.
_UPSTREAM_TEXT_LIMIT = 300


class SalesforceError(Exception):
    """Registering or reaching an org failed; `message` is precise and safe to show a user."""

    def __init__(self, message: str, *, error_code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code


@dataclass(frozen=True)
class SfdxAuthUrl:
    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)
    instance_url: str  # scheme included, no trailing slash: "https://acme.my.salesforce.com"

    def __repr__(self) -> str:
        return (
            f"SfdxAuthUrl(client_id={self.client_id!r}, "
            f"client_secret={_MASK if self.client_secret else ''!r}, "
            f"refresh_token={_MASK!r}, instance_url={self.instance_url!r})"
        )

    __str__ = __repr__

    def to_url(self) -> str:
        """The canonical `force://` form; https instances are written without their scheme."""
        instance = self.instance_url.removeprefix("https://")
        return f"{_SCHEME}{self.client_id}:{self.client_secret}:{self.refresh_token}@{instance}"

    @property
    def _sensitive(self) -> tuple[str, ...]:
        return (self.refresh_token, self.client_secret)


@dataclass
class OrgIdentity:
    username: str
    org_id: str  # the 18-character Organization Id
    user_id: str
    instance_url: str
    organization_type: str
    is_sandbox: bool
    instance_name: str
    access_token: str = field(repr=False)

    def __repr__(self) -> str:
        return (
            f"OrgIdentity(username={self.username!r}, org_id={self.org_id!r}, "
            f"user_id={self.user_id!r}, instance_url={self.instance_url!r}, "
            f"organization_type={self.organization_type!r}, is_sandbox={self.is_sandbox!r}, "
            f"instance_name={self.instance_name!r}, access_token={_MASK!r})"
        )

    __str__ = __repr__


def parse_auth_url(raw: str) -> SfdxAuthUrl:
    """Read `force://<clientId>:<clientSecret>:<refreshToken>@<instance>` (secret may be empty)."""
    text = (raw or "").strip()
    if not text.lower().startswith(_SCHEME):
        raise SalesforceError("SFDX auth URL must start with force://")
    credentials, at, instance = text[len(_SCHEME) :].rpartition("@")
    if not at:
        raise SalesforceError("SFDX auth URL has no '@' between the credentials and the instance")
    parts = credentials.split(":")
    if len(parts) != 3:
        raise SalesforceError(
            "SFDX auth URL must have exactly 3 ':'-separated parts before '@' "
            f"(clientId:clientSecret:refreshToken), found {len(parts)}"
        )
    client_id, client_secret, refresh_token = parts
    if not client_id:
        raise SalesforceError("SFDX auth URL has an empty client id")
    if not refresh_token:
        raise SalesforceError("SFDX auth URL has an empty refresh token")
    return SfdxAuthUrl(
        client_id=client_id,
        client_secret=client_secret,
        refresh_token=refresh_token,
        instance_url=_instance_url(instance.strip()),
    )


def exchange_refresh_token(auth: SfdxAuthUrl) -> tuple[str, str, str]:
    """Trade the refresh token for a session: (access_token, instance_url, identity_url)."""
    form = {
        "grant_type": "refresh_token",
        "client_id": auth.client_id,
        "refresh_token": auth.refresh_token,
    }
    if auth.client_secret:
        form["client_secret"] = auth.client_secret
    response = _call(
        "POST",
        f"{auth.instance_url}/services/oauth2/token",
        target=auth.instance_url,
        sensitive=auth._sensitive,
        data=form,
        headers={"Accept": "application/json"},
    )
    if response.status_code != 200:
        raise _token_error(response, auth)
    body = _json_object(response, "the token endpoint", sensitive=auth._sensitive)
    access_token = body.get("access_token")
    instance_url = body.get("instance_url")
    identity_url = body.get("id")
    if not all(isinstance(v, str) and v for v in (access_token, instance_url, identity_url)):
        raise SalesforceError(
            f"Salesforce token endpoint at {auth.instance_url} answered without "
            "access_token, instance_url and id"
        )
    sensitive = (*auth._sensitive, access_token)
    # The session is about to be sent to both URLs, so they get the same checks as the instance.
    instance_url = _checked_url(instance_url.rstrip("/"), "instance URL", sensitive)
    identity_url = _checked_url(identity_url, "identity URL", sensitive)
    return access_token, instance_url, identity_url


def connect(auth: SfdxAuthUrl) -> OrgIdentity:
    """Open a session with the org and describe who and what it is."""
    access_token, instance_url, identity_url = exchange_refresh_token(auth)
    sensitive = (*auth._sensitive, access_token)
    headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}

    response = _call("GET", identity_url, target=instance_url, sensitive=sensitive, headers=headers)
    _raise_for_api_error(response, "reading the identity URL", sensitive)
    identity = _json_object(response, "the identity URL", sensitive=sensitive)

    response = _call(
        "GET",
        f"{instance_url}/services/data/{API_VERSION}/query",
        target=instance_url,
        sensitive=sensitive,
        headers=headers,
        params={"q": ORGANIZATION_QUERY},
    )
    _raise_for_api_error(response, "reading the Organization record", sensitive)
    records = _json_object(response, "the Organization query", sensitive=sensitive).get("records")
    if not isinstance(records, list) or not records or not isinstance(records[0], dict):
        raise SalesforceError(
            f"Salesforce at {instance_url} returned no Organization record to this user"
        )
    organization = records[0]

    org_id = str(organization.get("Id") or identity.get("organization_id") or "")
    username = identity.get("username")
    if not org_id or not isinstance(username, str) or not username:
        raise SalesforceError(
            f"Salesforce at {instance_url} did not say which org and user the session belongs to"
        )
    return OrgIdentity(
        username=username,
        org_id=to_18_char_id(org_id),
        user_id=to_18_char_id(str(identity.get("user_id") or "")),
        instance_url=instance_url,
        organization_type=str(organization.get("OrganizationType") or ""),
        is_sandbox=bool(organization.get("IsSandbox")),
        instance_name=str(organization.get("InstanceName") or ""),
        access_token=access_token,
    )


def to_18_char_id(record_id: str) -> str:
    """The case-insensitive 18-character form of a 15-character Salesforce id."""
    if len(record_id) != 15:
        return record_id
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    suffix = ""
    for start in range(0, 15, 5):
        chunk = record_id[start : start + 5]
        bits = sum(1 << i for i, char in enumerate(chunk) if char.isupper())
        suffix += alphabet[bits]
    return record_id + suffix


def _instance_url(instance: str) -> str:
    scheme, separator, host = instance.partition("://")
    if not separator:
        scheme, host = "", instance
    scheme = scheme.lower()
    host = host.rstrip("/").lower()
    if not host:
        raise SalesforceError("SFDX auth URL has no instance host after '@'")
    if scheme not in ("", "http", "https"):
        raise SalesforceError(f"Instance {instance} must use https")
    if not _HOST.match(host):
        raise SalesforceError(f"Instance host {host!r} is not a valid host name")
    insecure_allowed = _is_insecure_host_allowed(host)
    if scheme == "http" and not insecure_allowed:
        raise SalesforceError(
            f"Instance host {host} must be reached over https; plain http is only allowed for "
            "hosts listed in SFP_SALESFORCE_INSECURE_HOSTS"
        )
    if not insecure_allowed and not _is_salesforce_host(host):
        raise SalesforceError(f"Instance host {host} is not a Salesforce domain")
    return f"{scheme or ('http' if insecure_allowed else 'https')}://{host}"


def _checked_url(url: str, what: str, sensitive: tuple[str, ...]) -> str:
    parts = urlsplit(url)
    host = parts.netloc.lower()
    allowed = _is_insecure_host_allowed(host)
    if (parts.scheme == "https" and (allowed or _is_salesforce_host(host))) or (
        parts.scheme == "http" and allowed
    ):
        return url
    raise SalesforceError(
        _scrub(f"Salesforce answered with an {what} outside Salesforce: {url}", sensitive)
    )


def _is_insecure_host_allowed(host: str) -> bool:
    allowed = getattr(settings, "SFP_SALESFORCE_INSECURE_HOSTS", []) or []
    return host in {str(entry).strip().lower() for entry in allowed}


def _is_salesforce_host(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if ":" in host else host
    return any(name == domain or name.endswith("." + domain) for domain in SALESFORCE_DOMAINS)


def _call(
    method: str, url: str, *, target: str, sensitive: tuple[str, ...], **kwargs: Any
) -> requests.Response:
    try:
        # Redirects are not followed: a redirected POST would lose its form and a redirected
        # GET could carry the session to a host nobody checked.
        return requests.request(
            method, url, timeout=TIMEOUT_SECONDS, allow_redirects=False, **kwargs
        )
    except requests.Timeout:
        reason = f"no answer within {TIMEOUT_SECONDS} s"
    except requests.RequestException as error:
        reason = _network_reason(error)
    raise SalesforceError(_scrub(f"Could not reach {target}: {reason}", sensitive))


def _network_reason(error: requests.RequestException) -> str:
    # requests nests the socket error several exceptions deep; its errno text is the useful part.
    match = re.search(r"\[Errno -?\d+\] ([^'\"\)]+)", str(error))
    if match:
        return match.group(1).strip().lower()
    if isinstance(error, requests.exceptions.SSLError):
        return "TLS handshake failed"
    return type(error).__name__


def _token_error(response: requests.Response, auth: SfdxAuthUrl) -> SalesforceError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "error" not in body:
        return SalesforceError(
            f"Salesforce token endpoint at {auth.instance_url} answered HTTP {response.status_code}"
        )
    code = str(body.get("error"))
    description = _short(str(body.get("error_description") or code))
    refused = {
        "invalid_grant": "the refresh token",
        "invalid_client_id": f"the client id {auth.client_id}",
        "invalid_client": "the client credentials",
        "invalid_app_access": "this user's access to the connected app",
        "inactive_user": "the user of the refresh token",
        "inactive_org": "the org of the refresh token",
    }.get(code)
    message = (
        f"Salesforce refused {refused}: {description}"
        if refused
        else f"Salesforce refused the token request ({code}): {description}"
    )
    return SalesforceError(_scrub(message, auth._sensitive), error_code=code)


def _raise_for_api_error(
    response: requests.Response, doing: str, sensitive: tuple[str, ...]
) -> None:
    status = response.status_code
    if status == 200:
        return
    code, detail = _api_error_detail(response)
    explanation = f": {code + ': ' if code else ''}{detail}" if detail or code else ""
    if status in (401, 403):
        message = f"Salesforce rejected the session when {doing}{explanation}"
    elif 300 <= status < 400:
        message = f"Salesforce redirected the request when {doing} (HTTP {status})"
    else:
        message = f"Salesforce answered HTTP {status} when {doing}{explanation}"
    raise SalesforceError(_scrub(message, sensitive), error_code=code or None)


def _api_error_detail(response: requests.Response) -> tuple[str, str]:
    """(errorCode, message) of a REST API error; identity errors are plain text."""
    try:
        body = response.json()
    except ValueError:
        return "", _short(response.text)
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    if isinstance(body, dict):
        code = str(body.get("errorCode") or body.get("error") or "")
        detail = str(body.get("message") or body.get("error_description") or "")
        return code, _short(detail)
    return "", ""


def _json_object(
    response: requests.Response, source: str, *, sensitive: tuple[str, ...]
) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise SalesforceError(
            _scrub(f"Salesforce answered {source} with something other than JSON", sensitive)
        )
    return body


def _short(text: str) -> str:
    text = text.strip()
    text = text.splitlines()[0] if text else ""
    if len(text) > _UPSTREAM_TEXT_LIMIT:
        return text[: _UPSTREAM_TEXT_LIMIT - 1] + "…"
    return text


def _scrub(text: str, sensitive: tuple[str, ...]) -> str:
    for value in sensitive:
        if value:
            text = text.replace(value, _MASK)
    return text
