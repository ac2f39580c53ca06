"""No 5xx from the edges, walked: every URL pattern of the URLconf (read from the resolver, so a
new route is walked without anyone listing it) × every HTTP method × {anonymous, owner}, with
plausible and malformed path parameters; then JSON nested too deep and too large against every
write method of every `/sfp/*` route. Nothing answers 5xx, every `/sfp/*` error is in the one
error shape, an undeclared method is 405 with `Allow`, and nothing is logged at ERROR.
"""

import logging
import re
import time
import uuid

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from apps.accounts.models import TeamRole
from apps.environments.models import Environment
from tests.accounts.factories import TeamFactory, access_token_for, app_token_for, make_member
from tests.integrations.factories import sealed_integration
from tests.projects.factories import ProjectFactory
from tests.tasks.conftest import create_execution

pytestmark = pytest.mark.django_db(transaction=True)

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "DELETE")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# What fuzzers put in a path parameter: an integer id, a near-UUID, quotes and markup, a NUL
# byte (PostgreSQL refuses it in any string), and a very long value.
MALFORMED = ("1", "not-a-uuid", "00000000-0000-0000-0000-00000000000g", "%27%22%3Cx%3E", "%00",
             "x" * 600)  # fmt: skip
_PARAMETER = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")
_REGEX_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>(?P<body>[^)]*)\)")
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 5_000 + b"1" + b"}" * 5_000


def url_patterns() -> list[tuple[str, URLPattern]]:
    """(route, pattern) of every endpoint, prefixes joined, in URLconf order."""

    def walk(patterns, prefix):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, prefix + str(entry.pattern))
            else:
                yield prefix + str(entry.pattern), entry

    return list(walk(get_resolver().url_patterns, ""))


def fill(route: str, value_for) -> str:
    """A request path for `route`, each parameter replaced by `value_for(name)`."""
    path = _PARAMETER.sub(lambda m: value_for(m["name"]), route)
    # Regex routes (the admin's): a named group becomes a value, its first alternative when
    # the group lists them; anchors go.
    path = _REGEX_GROUP.sub(
        lambda m: m["body"].split("|")[0] if "|" in m["body"] else value_for(m["name"]), path
    )
    return "/" + path.replace("^", "").replace("$", "")


def paths_for(route: str, plausible: dict[str, str]) -> list[str]:
    if not (_PARAMETER.search(route) or _REGEX_GROUP.search(route)):
        return [fill(route, str)]
    # The console (Django's admin) with fewer odd values: its views are Django's, and each of
    # its pages costs ~10 ms as an owner (the role is re-read for every permission it asks).
    malformed = MALFORMED if not route.startswith("admin/") else ("not-a-uuid", "%00")
    return [fill(route, lambda name: plausible.get(name, str(uuid.uuid4())))] + [
        fill(route, lambda name, bad=bad: bad) for bad in malformed
    ]


@pytest.fixture
def world():
    """One of each object a path names, so plausible parameters reach real rows."""
    team = TeamFactory(slug="acme")
    owner = make_member(team, TeamRole.OWNER, email="owner@example.com")
    project = ProjectFactory(identifier="acme/app")
    environment = Environment.objects.create(project=project, name="qa", category="test")
    token, _ = app_token_for(owner)
    return owner, {
        "operation_id": str(create_execution(owner).pk),
        "email": owner.email,
        "slug": team.slug,
        "token_id": str(token.pk),
        "integration_id": str(sealed_integration().pk),
        "identifier": project.identifier,
        "repository": project.identifier,
        "environment_id": str(environment.pk),
        "resource": environment.lock_resource,
        "object_id": str(owner.pk),
        "id": str(owner.pk),
        "content_type_id": "1",
        "url": "nothing-here/",
    }


def sign_in(client: Client, owner) -> Client:
    """Give `client` both credentials an owner can have: a bearer token (API) and a login
    session (dashboard, console). Again after a walked logout, which ends both."""
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {access_token_for(owner)}"
    client.force_login(owner)
    return client


def send(client: Client, method: str, path: str, body: bytes | None = None):
    extra = {"content_type": "application/json"} if body is not None else {}
    return client.generic(method, path, body or b"", **extra)


def is_api(path: str) -> bool:
    return path.startswith("/sfp/") or path == "/health"


def check(response, method: str, path: str, failures: list[str]) -> None:
    status = response.status_code
    if status >= 500:
        failures.append(f"{status} {method} {path[:90]}")
        return
    if is_api(path) and status >= 400 and method != "HEAD":
        is_json = response.get("Content-Type", "").startswith("application/json")
        body = response.json() if is_json else None
        if not isinstance(body, dict) or body.get("statusCode") != status or not (
            {"message", "error"} <= set(body)
        ):
            failures.append(f"{status} {method} {path[:90]}: not the error shape: {response.content[:120]!r}")
    if status == 405 and not response.get("Allow"):
        failures.append(f"405 {method} {path[:90]} without an Allow header")


def walk(routes, owner, plausible, caplog) -> tuple[int, list[str], set[str]]:
    """Send every method as both callers to every path of `routes`: (requests, bad answers,
    distinct ERROR log lines)."""
    failures: list[str] = []
    requests = 0
    # Two clients for the whole walk: each new one loads the middleware (whitenoise's file scan).
    anonymous = Client(raise_request_exception=False)
    signed_in = sign_in(Client(raise_request_exception=False), owner)
    caplog.set_level(logging.WARNING)
    for route in routes:
        for path in paths_for(route, plausible):
            # DELETE last, so a walked delete takes nothing away from the other methods.
            for method in METHODS:
                for client in (anonymous, signed_in):
                    body = b"{}" if method in WRITE_METHODS else None
                    check(send(client, method, path, body), method, path, failures)
                    requests += 1
                if "logout" in path:
                    sign_in(signed_in, owner)
    errors = {f"{r.name}: {r.getMessage()[:160]}" for r in caplog.records if r.levelno >= logging.ERROR}
    caplog.clear()
    # The owner was still an owner at the end: the walk was not anonymous twice over.
    if send(signed_in, "GET", "/sfp/api/users/me").status_code != 200:
        failures.append("the owner's credentials stopped working during the walk")
    return requests, failures, errors


@pytest.mark.parametrize("part", ["api", "pages"])
def test_every_route_method_and_caller_answers_below_500(part, world, caplog):
    """`api`: `/sfp/*`, `/health`, `/metrics`; `pages`: the console and the dashboard."""
    owner, plausible = world
    every = [route for route, _ in url_patterns()]
    routes = [route for route in every if is_api("/" + route) or route == "metrics"]
    if part == "pages":
        routes = [route for route in every if route not in routes]
    started = time.monotonic()
    requests, failures, errors = walk(routes, owner, plausible, caplog)
    elapsed = time.monotonic() - started
    print(f"{part}: walked {len(routes)} of {len(every)} patterns, {requests} requests, {elapsed:.1f} s")
    assert not failures, f"{len(failures)} bad answers:\n" + "\n".join(failures[:300])
    assert not errors, f"{len(errors)} distinct ERROR lines:\n" + "\n".join(sorted(errors)[:50])
    assert len(routes) > 40
