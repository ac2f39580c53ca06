"""FakeAzure: Azure AD's client-credentials token endpoint and the Azure DevOps projects API on one
loopback server, answering like the real services.

Point both `loginUrl` and `baseUrl` of an integration's config at `fake.url`. The token endpoint
(`/{tenant}/oauth2/v2.0/token`) checks tenant, client id, secret and scope and returns AADSTS
errors as Azure AD does; it counts the tokens it mints so tests can prove reuse. The projects API
(`/{organization}/_apis/projects`) accepts HTTP Basic with a known PAT or a Bearer token this fake
issued to a service principal that is a member of the organization. `rate_limit()` makes Azure
DevOps answer 429 with `Retry-After`; `sign_in_page_for_bad_credentials` switches the answer to a
rejected credential from a 401 to the 203 HTML sign-in page some clients get.
"""

import base64
import binascii
import secrets
import time

from tests.support.fakes import FakeResponse, FakeServer, RecordedRequest

AZURE_DEVOPS_SCOPE = "499b84ac-1321-427f-aa17-267ca6975798/.default"
_TRACE = "Trace ID: 0b4f1b6e-0000-4000-8000-000000000000\r\nCorrelation ID: 5a7d0c1e-0000-4000"


class FakeAzure(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.tenants: set[str] = set()
        # client id → {"tenant", "secret", "organizations"}
        self.service_principals: dict[str, dict] = {}
        self.organizations: dict[str, list[str]] = {}  # name → project names
        self.pats: dict[str, str] = {}  # PAT → organization it was created in
        self.token_lifetime_seconds = 3599
        self.tokens_minted = 0
        self._issued: dict[str, tuple[str, float]] = {}  # access token → (client id, expiry)
        self.sign_in_page_for_bad_credentials = False
        self._retry_after: int | None = None

    def add_organization(self, name: str, projects: list[str] | None = None) -> None:
        self.organizations[name] = list(projects or ["sfp-project"])

    def add_pat(self, token: str, organization: str) -> None:
        self.pats[token] = organization

    def add_service_principal(
        self, *, tenant: str, client_id: str, client_secret: str, organizations: list[str]
    ) -> None:
        self.tenants.add(tenant)
        self.service_principals[client_id] = {
            "tenant": tenant,
            "secret": client_secret,
            "organizations": set(organizations),
        }

    def rate_limit(self, retry_after_seconds: int = 30) -> None:
        self._retry_after = retry_after_seconds

    def lift_rate_limit(self) -> None:
        self._retry_after = None

    def handle(self, request: RecordedRequest) -> FakeResponse:
        parts = request.route.strip("/").split("/")
        if (
            request.method == "POST"
            and len(parts) == 4
            and parts[1:] == ["oauth2", "v2.0", "token"]
        ):
            return self._token(request, tenant=parts[0])
        if request.method == "GET" and len(parts) == 3 and parts[1:] == ["_apis", "projects"]:
            return self._projects(request, organization=parts[0])
        return FakeResponse.json(404, {"message": "Not Found"})

    def _token(self, request: RecordedRequest, tenant: str) -> FakeResponse:
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            return _aad_error(
                400, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant"
            )
        if tenant not in self.tenants:
            return _aad_error(
                400,
                "invalid_request",
                f"AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the "
                "correct tenant ID and are signing into the correct cloud.",
            )
        client_id = form.get("client_id", "")
        principal = self.service_principals.get(client_id)
        if principal is None or principal["tenant"] != tenant:
            return _aad_error(
                400,
                "unauthorized_client",
                f"AADSTS700016: Application with identifier '{client_id}' was not found in the "
                f"directory '{tenant}'.",
            )
        if not secrets.compare_digest(form.get("client_secret", ""), principal["secret"]):
            return _aad_error(
                401,
                "invalid_client",
                "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in "
                "the request is the client secret value, not the client secret ID, for a secret "
                f"added to app '{client_id}'.",
            )
        if form.get("scope") != AZURE_DEVOPS_SCOPE:
            return _aad_error(
                400,
                "invalid_scope",
                f"AADSTS70011: The provided request must include a 'scope' input parameter. "
                f"The provided value for the input parameter 'scope' is not valid: "
                f"{form.get('scope')!r}.",
            )
        access_token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + secrets.token_urlsafe(48)
        with self.lock:
            self._issued[access_token] = (client_id, time.time() + self.token_lifetime_seconds)
            self.tokens_minted += 1
        return FakeResponse.json(
            200,
            {
                "token_type": "Bearer",
                "expires_in": self.token_lifetime_seconds,
                "ext_expires_in": self.token_lifetime_seconds,
                "access_token": access_token,
            },
        )

    def _projects(self, request: RecordedRequest, organization: str) -> FakeResponse:
        if self._retry_after is not None:
            return FakeResponse.json(
                429,
                {
                    "message": "TF400733: The request has been canceled: Request was blocked "
                    "due to exceeding usage of resource 'ATCPU' in namespace 'User'."
                },
                {
                    "Retry-After": str(self._retry_after),
                    "X-RateLimit-Resource": "ATCPU",
                    "X-RateLimit-Delay": "0.5",
                    "X-RateLimit-Limit": "200",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(int(time.time()) + self._retry_after),
                },
            )
        if not self._authorized(request, organization):
            # Real Azure DevOps sometimes answers a bad PAT with 203 and an HTML sign-in page
            # (depending on the client's headers). By default the fake answers a plain 401 with
            # an empty body instead, which is what API clients sending `Accept:
            # application/json` mostly see and the clearer contract to test against; the 203
            # variant is a switch so the client's handling of it is tested too.
            if self.sign_in_page_for_bad_credentials:
                return FakeResponse.text(
                    203,
                    "<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title>"
                    "</head><body></body></html>",
                    content_type="text/html",
                )
            return FakeResponse(
                401,
                b"",
                {
                    "WWW-Authenticate": "Bearer authorization_uri=https://login.microsoftonline.com/"
                    'common, Basic realm="https://tfsprodweu2.visualstudio.com/"',
                    "X-TFS-ProcessId": "6f8a3c2d-0000-4000-8000-000000000000",
                },
            )
        if organization not in self.organizations:
            return FakeResponse.json(
                404,
                {"message": f"TF400813: Resource not available for organization {organization}"},
            )
        if not request.query.get("api-version"):
            return FakeResponse.json(
                400,
                {
                    "message": 'No api-version was supplied for the "GET" request. The version '
                    "must be supplied either as part of the Accept header or as a query string "
                    "parameter",
                    "typeKey": "VssVersionNotSpecifiedException",
                },
            )
        projects = self.organizations[organization]
        top = int(request.query.get("$top", str(len(projects))))
        value = [
            {
                "id": f"00000000-0000-4000-8000-{index:012d}",
                "name": name,
                "url": f"{organization}/_apis/projects/{name}",
                "state": "wellFormed",
                "visibility": "private",
            }
            for index, name in enumerate(projects[:top])
        ]
        return FakeResponse.json(200, {"count": len(value), "value": value})

    def _authorized(self, request: RecordedRequest, organization: str) -> bool:
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credential, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return False
            # Azure DevOps ignores the user name of Basic auth; only the PAT counts.
            pat = decoded.partition(":")[2]
            return self.pats.get(pat) == organization
        if scheme.lower() == "bearer":
            with self.lock:
                issued = self._issued.get(credential.strip())
            if issued is None or issued[1] <= time.time():
                return False
            principal = self.service_principals.get(issued[0])
            return principal is not None and organization in principal["organizations"]
        return False


def _aad_error(status: int, error: str, description: str) -> FakeResponse:
    return FakeResponse.json(
        status,
        {
            "error": error,
            "error_description": f"{description}\r\n{_TRACE}\r\nTimestamp: 2026-01-01 00:00:00Z",
            "error_codes": [int(description.split(":")[0].removeprefix("AADSTS"))],
            "timestamp": "2026-01-01 00:00:00Z",
            "trace_id": "0b4f1b6e-0000-4000-8000-000000000000",
            "correlation_id": "5a7d0c1e-0000-4000-8000-000000000000",
        },
    )
