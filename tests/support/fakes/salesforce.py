"""FakeSalesforce: one loopback server acting as an org's instance and as its login and identity
host, answering like Salesforce.

Orgs are registered by refresh token with their connected-app client id and secret (the secret
may be empty, as for the CLI's `PlatformCLI` app). The token endpoint applies Salesforce's
refresh-token grant rules and errors (`invalid_client_id`, `invalid_client`, `invalid_grant`),
issues random access tokens, and points the `id` URL at itself. The identity URL and the REST
query endpoint require one of those tokens. `auth_url(refresh_token)` gives the SFDX auth URL of
a registered org; `revoke(refresh_token)`, `expire_sessions()` and `session_request_budget`
simulate an admin revoking access and sessions timing out.
"""

import base64
import hashlib
import secrets
import string
import time
from dataclasses import dataclass

from tests.support.fakes import FakeResponse, FakeServer, RecordedRequest

API_VERSION = "v60.0"
_ALPHANUMERIC = string.ascii_letters + string.digits


@dataclass
class FakeOrg:
    refresh_token: str
    client_id: str
    client_secret: str
    username: str
    org_id: str  # 18 characters
    user_id: str  # 18 characters
    name: str
    is_sandbox: bool
    organization_type: str
    instance_name: str
    revoked: bool = False


class FakeSalesforce(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.orgs: dict[str, FakeOrg] = {}  # refresh token → org
        # How many authenticated requests each new access token may make before it expires
        # (None: unlimited); 0 or 1 lets a test expire a session in the middle of a flow.
        self.session_request_budget: int | None = None
        self._sessions: dict[str, FakeOrg] = {}  # access token → org
        self._budgets: dict[str, int | None] = {}  # access token → requests left
        self._orgs_added = 0

    def add_org(
        self,
        *,
        refresh_token: str | None = None,
        client_id: str = "PlatformCLI",
        client_secret: str = "",
        username: str | None = None,
        org_id: str | None = None,
        user_id: str | None = None,
        name: str = "Acme",
        is_sandbox: bool = False,
        organization_type: str = "Developer Edition",
        instance_name: str = "NA139",
    ) -> FakeOrg:
        """Register an org; unspecified usernames and ids are unique to it."""
        self._orgs_added += 1
        username = username or f"admin{self._orgs_added}@acme.example"
        org_id = org_id or _salesforce_id("00D")
        user_id = user_id or _salesforce_id("005")
        refresh_token = refresh_token or "5Aep861" + "".join(
            secrets.choice(_ALPHANUMERIC + ".") for _ in range(80)
        )
        org = FakeOrg(
            refresh_token=refresh_token,
            client_id=client_id,
            client_secret=client_secret,
            username=username,
            org_id=org_id,
            user_id=user_id,
            name=name,
            is_sandbox=is_sandbox,
            organization_type=organization_type,
            instance_name=instance_name,
        )
        with self.lock:
            self.orgs[refresh_token] = org
        return org

    def revoke(self, refresh_token: str) -> None:
        with self.lock:
            self.orgs[refresh_token].revoked = True
            for token in [
                t for t, org in self._sessions.items() if org.refresh_token == refresh_token
            ]:
                del self._sessions[token]

    def expire_sessions(self) -> None:
        """Invalidate every access token issued so far (a session timeout or logout)."""
        with self.lock:
            self._sessions.clear()

    def auth_url(self, refresh_token: str) -> str:
        org = self.orgs[refresh_token]
        return f"force://{org.client_id}:{org.client_secret}:{org.refresh_token}@{self.host}"

    def handle(self, request: RecordedRequest) -> FakeResponse:
        route = request.route
        if request.method == "POST" and route == "/services/oauth2/token":
            return self._token(request)
        if request.method == "GET" and route.startswith("/id/"):
            return self._identity(request)
        if request.method == "GET" and route == f"/services/data/{API_VERSION}/query":
            return self._query(request)
        return FakeResponse.json(
            404,
            [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
        )

    def _token(self, request: RecordedRequest) -> FakeResponse:
        form = request.form()
        if form.get("grant_type") != "refresh_token":
            return _oauth_error("unsupported_grant_type", "grant type not supported")
        client_id = form.get("client_id", "")
        with self.lock:
            org = self.orgs.get(form.get("refresh_token", ""))
            known_clients = {o.client_id for o in self.orgs.values()}
            if (org is None and client_id not in known_clients) or (
                org is not None and org.client_id != client_id
            ):
                return _oauth_error("invalid_client_id", "client identifier invalid")
            if org is not None and form.get("client_secret", "") != org.client_secret:
                return _oauth_error("invalid_client", "invalid client credentials")
            if org is None or org.revoked:
                return _oauth_error("invalid_grant", "expired access/refresh token")
            access_token = f"{org.org_id[:15]}!" + "".join(
                secrets.choice(_ALPHANUMERIC + ".") for _ in range(96)
            )
            self._sessions[access_token] = org
            self._budgets[access_token] = self.session_request_budget
        issued_at = str(int(time.time() * 1000))
        identity_url = f"{self.url}/id/{org.org_id}/{org.user_id}"
        signature = base64.b64encode(
            hashlib.sha256(f"{identity_url}{issued_at}".encode()).digest()
        ).decode()
        return FakeResponse.json(
            200,
            {
                "access_token": access_token,
                "signature": signature,
                "scope": "refresh_token web api",
                "instance_url": self.url,
                "id": identity_url,
                "token_type": "Bearer",
                "issued_at": issued_at,
            },
        )

    def _session(self, request: RecordedRequest) -> FakeOrg | None:
        token = request.bearer_token() or ""
        with self.lock:
            org = self._sessions.get(token)
            budget = self._budgets.get(token)
            if org is None or budget == 0:
                return None
            if budget is not None:
                self._budgets[token] = budget - 1
            return org

    def _identity(self, request: RecordedRequest) -> FakeResponse:
        org = self._session(request)
        if org is None or request.route != f"/id/{org.org_id}/{org.user_id}":
            # The identity service answers a bad token in plain text, unlike the REST API.
            return FakeResponse.text(403, "Bad_OAuth_Token")
        return FakeResponse.json(
            200,
            {
                "id": f"{self.url}/id/{org.org_id}/{org.user_id}",
                "asserted_user": True,
                "user_id": org.user_id,
                "organization_id": org.org_id,
                "username": org.username,
                "nick_name": org.username.split("@")[0],
                "display_name": "Admin User",
                "email": org.username,
                "active": True,
                "user_type": "STANDARD",
                "language": "en_US",
                "locale": "en_US",
                "utcOffset": 0,
                "urls": {
                    "rest": f"{self.url}/services/data/v{{version}}/",
                    "query": f"{self.url}/services/data/v{{version}}/query/",
                },
            },
        )

    def _query(self, request: RecordedRequest) -> FakeResponse:
        org = self._session(request)
        if org is None:
            return FakeResponse.json(
                401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
            )
        soql = " ".join(request.query.get("q", "").split())
        if not soql.upper().startswith("SELECT ") or not soql.upper().endswith(
            " FROM ORGANIZATION"
        ):
            return FakeResponse.json(
                400,
                [{"message": f"unexpected query: {soql}", "errorCode": "MALFORMED_QUERY"}],
            )
        record = {
            "attributes": {
                "type": "Organization",
                "url": f"/services/data/{API_VERSION}/sobjects/Organization/{org.org_id}",
            },
            "Id": org.org_id,
            "Name": org.name,
            "IsSandbox": org.is_sandbox,
            "OrganizationType": org.organization_type,
            "InstanceName": org.instance_name,
        }
        return FakeResponse.json(200, {"totalSize": 1, "done": True, "records": [record]})


def _salesforce_id(prefix: str) -> str:
    """A random 18-character id: 15 case-sensitive characters and their case checksum."""
    base = prefix + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(15 - len(prefix)))
    checksum = ""
    for start in range(0, 15, 5):
        bits = sum(1 << i for i, char in enumerate(base[start : start + 5]) if char.isupper())
        checksum += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[bits]
    return base + checksum


def _oauth_error(error: str, description: str) -> FakeResponse:
    return FakeResponse.json(400, {"error": error, "error_description": description})
