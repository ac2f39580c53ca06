"""FakeGitHub: the slice of the GitHub REST API that provider clients use, answering like GitHub.

It knows GitHub Apps (id → public key), their installations and personal access tokens. The
installation access-token endpoint really verifies the App JWT's RS256 signature with the app's
public key and applies GitHub's claim rules, mints random `ghs_` tokens with a configurable
lifetime (so tests can watch reuse and renewal) and counts them. Repository and user endpoints
accept only tokens it issued. `rate_limit()` makes every endpoint answer GitHub's 403 with an
exhausted `x-ratelimit-remaining`.

It also serves git: `add_repository("acme/app", bare_path)` makes `<url>/acme/app.git` clonable
over the smart HTTP protocol (the real `git http-backend` answers), for Basic credentials
`x-access-token:<installation token or PAT it issued>` only, as for a private repository on
GitHub; anything else gets git's 401 challenge.
"""

import base64
import binascii
import os
import secrets
import string
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt

from tests.support.fakes import FakeResponse, FakeServer, RecordedRequest

DOCS = "https://docs.github.com/rest"
_TOKEN_ALPHABET = string.ascii_letters + string.digits


class FakeGitHub(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.apps: dict[str, str] = {}  # app id → public key PEM
        self.installations: dict[str, dict] = {}  # id → {"appId", "account", "revoked"}
        self.pats: dict[str, str] = {}  # token → login
        self.token_lifetime = timedelta(hours=1)
        self.tokens_minted = 0
        self._installation_tokens: dict[str, tuple[str, float]] = {}  # token → (id, expiry)
        self._rate_limit_reset: int | None = None
        self.repositories: dict[str, Path] = {}  # "owner/repo" → bare repository

    def add_repository(self, full_name: str, bare: Path) -> str:
        """Serve a bare repository; returns its clone URL."""
        self.repositories[full_name] = bare
        return f"{self.url}/{full_name}.git"

    def add_app(self, app_id: str | int, public_key_pem: str) -> None:
        self.apps[str(app_id)] = public_key_pem

    def add_installation(
        self, installation_id: str | int, *, app_id: str | int, account: str, revoked: bool = False
    ) -> None:
        self.installations[str(installation_id)] = {
            "appId": str(app_id),
            "account": account,
            "revoked": revoked,
        }

    def revoke_installation(self, installation_id: str | int) -> None:
        with self.lock:
            self.installations[str(installation_id)]["revoked"] = True

    def add_pat(self, token: str, login: str) -> None:
        self.pats[token] = login

    def rate_limit(self, reset_in_seconds: int = 120) -> int:
        """From now on answer every request with GitHub's primary rate-limit 403; returns reset."""
        self._rate_limit_reset = int(time.time()) + reset_in_seconds
        return self._rate_limit_reset

    def lift_rate_limit(self) -> None:
        self._rate_limit_reset = None

    def handle(self, request: RecordedRequest) -> FakeResponse:
        if self._rate_limit_reset is not None:
            return FakeResponse.json(
                403,
                {
                    "message": "API rate limit exceeded for installation ID 1.",
                    "documentation_url": f"{DOCS}/overview/rate-limits-for-the-rest-api",
                },
                {
                    "x-ratelimit-limit": "5000",
                    "x-ratelimit-remaining": "0",
                    "x-ratelimit-used": "5000",
                    "x-ratelimit-reset": str(self._rate_limit_reset),
                    "x-ratelimit-resource": "core",
                },
            )
        if ".git/" in request.route:
            return self._git(request)
        parts = request.route.strip("/").split("/")
        if (
            request.method == "POST"
            and len(parts) == 4
            and parts[:2] == ["app", "installations"]
            and parts[3] == "access_tokens"
        ):
            return self._access_token(request, parts[2])
        if request.method == "GET" and request.route == "/installation/repositories":
            return self._installation_repositories(request)
        if request.method == "GET" and request.route == "/user":
            return self._user(request)
        return FakeResponse.json(404, {"message": "Not Found", "documentation_url": DOCS})

    def _access_token(self, request: RecordedRequest, installation_id: str) -> FakeResponse:
        undecodable = FakeResponse.json(
            401, {"message": "A JSON web token could not be decoded", "documentation_url": DOCS}
        )
        token = request.bearer_token()
        if token is None:
            return undecodable
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            return undecodable
        public_key = self.apps.get(str(unverified.get("iss")))
        if public_key is None:
            return undecodable
        try:
            claims = jwt.decode(
                token,
                public_key,
                algorithms=["RS256"],
                options={"require": ["iat", "exp", "iss"]},
                leeway=30,
            )
        except jwt.ExpiredSignatureError:
            return FakeResponse.json(
                401,
                {
                    "message": "'Expiration time' claim ('exp') must be a numeric value "
                    "representing the future time at which the assertion expires",
                    "documentation_url": DOCS,
                },
            )
        except jwt.InvalidTokenError:
            return undecodable
        if int(claims["exp"]) - int(claims["iat"]) > 600:
            return FakeResponse.json(
                401,
                {
                    "message": "'Expiration time' claim ('exp') is too far in the future",
                    "documentation_url": DOCS,
                },
            )
        with self.lock:
            installation = self.installations.get(installation_id)
            if (
                installation is None
                or installation["revoked"]
                or installation["appId"] != str(claims["iss"])
            ):
                return FakeResponse.json(404, {"message": "Not Found", "documentation_url": DOCS})
            minted = "ghs_" + "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(36))
            expires_at = datetime.now(UTC) + self.token_lifetime
            self._installation_tokens[minted] = (installation_id, expires_at.timestamp())
            self.tokens_minted += 1
        return FakeResponse.json(
            201,
            {
                "token": minted,
                "expires_at": expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "permissions": {"contents": "write", "metadata": "read", "pull_requests": "write"},
                "repository_selection": "all",
            },
        )

    def _installation_repositories(self, request: RecordedRequest) -> FakeResponse:
        with self.lock:
            issued = self._installation_tokens.get(request.bearer_token() or "")
            if issued is None or issued[1] <= time.time():
                return _bad_credentials()
            installation = self.installations[issued[0]]
            if installation["revoked"]:
                return _bad_credentials()
        account = installation["account"]
        repository = {
            "id": 1296269,
            "name": "sfp-project",
            "full_name": f"{account}/sfp-project",
            "private": True,
            "owner": {"login": account, "type": "Organization"},
        }
        per_page = int(request.query.get("per_page", "30"))
        return FakeResponse.json(
            200,
            {
                "total_count": 1,
                "repository_selection": "all",
                "repositories": [repository][:per_page],
            },
            {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4999"},
        )

    def _user(self, request: RecordedRequest) -> FakeResponse:
        token = request.bearer_token() or ""
        if token in self._installation_tokens:
            return FakeResponse.json(
                403,
                {
                    "message": "Resource not accessible by integration",
                    "documentation_url": f"{DOCS}/users/users#get-the-authenticated-user",
                },
            )
        login = self.pats.get(token)
        if login is None:
            return _bad_credentials()
        return FakeResponse.json(200, {"login": login, "id": 583231, "type": "User"})

    def _git_token_valid(self, request: RecordedRequest) -> bool:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            username, _, token = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        if username != "x-access-token":
            return False
        with self.lock:
            if token in self.pats:
                return True
            installation_id, expiry = self._installation_tokens.get(token, ("", 0.0))
            installation = self.installations.get(installation_id)
            return bool(installation) and not installation["revoked"] and expiry > time.time()

    def _git(self, request: RecordedRequest) -> FakeResponse:
        full_name, _, service_path = request.route.lstrip("/").partition(".git/")
        bare = self.repositories.get(full_name)
        if bare is None:
            return FakeResponse.text(404, "Repository not found.\n")
        if not self._git_token_valid(request):
            return FakeResponse(
                401, b"Invalid username or token.\n", {"WWW-Authenticate": 'Basic realm="GitHub"'}
            )
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(bare.parent),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": f"/{bare.name}/{service_path}",
            "QUERY_STRING": request.path.partition("?")[2],
            "REQUEST_METHOD": request.method,
            "CONTENT_TYPE": request.headers.get("content-type", ""),
            "CONTENT_LENGTH": str(len(request.body)),
            "HTTP_CONTENT_ENCODING": request.headers.get("content-encoding", ""),
            "HTTP_GIT_PROTOCOL": request.headers.get("git-protocol", ""),
            "REMOTE_USER": "x-access-token",
            "REMOTE_ADDR": "127.0.0.1",
        }
        answer = subprocess.run(
            ["git", "http-backend"], input=request.body, env=environment,
            capture_output=True, check=False,
        ).stdout  # fmt: skip
        head, _, body = answer.partition(b"\r\n\r\n")
        status, headers = 200, {}
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers[name] = value.strip()
        return FakeResponse(status, body, headers)


def _bad_credentials() -> FakeResponse:
    return FakeResponse.json(401, {"message": "Bad credentials", "documentation_url": DOCS})
