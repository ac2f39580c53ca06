"""No 5xx from the edges, walked: every URL pattern of the URLconf (read from the resolver, so a
new route is walked without anyone listing it) by every HTTP method by {anonymous, owner}, with
plausible and malformed path parameters; then JSON nested too deep and too large against every
write method of every `/sfp/*` route. Nothing answers 5xx, every `/sfp/*` error is in the one
error shape, an undeclared method is 405 with `Allow`, and nothing is logged at ERROR.
"""

import logging
import re
import time
import uuid

import pytest
from django.conf import settings
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
# What fuzzers put in a path parameter, by what it tests. A converter that only matches its own
# shape (`uuid`, `int`, `slug`) refuses every odd value in the resolver alike, so one value is
# enough there; a `str`/`path` parameter reaches the view, so it gets each kind: an integer id, a
# non-UUID, quotes and markup, and a very long value. A NUL byte (PostgreSQL refuses it in any
# string) is refused by the middleware before any route is resolved: one path per walk covers it.
REACHES_THE_VIEW = ("1", "not-a-uuid", "%27%22%3Cx%3E", "x" * 600)
REFUSED_BY_THE_RESOLVER = ("not-a-uuid",)
NUL = "%00"
_PARAMETER = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")
_REGEX_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>(?P<body>[^)]*)\)")
DEEP_JSON = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 5_000 + b"1" + b"}" * 5_000


def huge_json() -> bytes:
    """A well-formed body one byte over the configured limit."""
    limit = settings.SFP_API_MAX_JSON_BYTES
    return b'{"a":"' + b"x" * (limit - 7) + b'"}'


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


def malformed_for(route: str) -> tuple[str, ...]:
    """The odd values worth sending in `route`'s parameters (see REACHES_THE_VIEW)."""
    converters = {match["converter"] or "str" for match in _PARAMETER.finditer(route)}
    if _REGEX_GROUP.search(route) or converters & {"str", "path"}:
        # The console's regex routes are Django's admin: one odd value shows it holds.
        return REACHES_THE_VIEW if not route.startswith("admin/") else REFUSED_BY_THE_RESOLVER
    return REFUSED_BY_THE_RESOLVER


def paths_for(route: str, plausible: dict[str, str]) -> list[str]:
    if not (_PARAMETER.search(route) or _REGEX_GROUP.search(route)):
        return [fill(route, str)]
    return [fill(route, lambda name: plausible.get(name, str(uuid.uuid4())))] + [
        fill(route, lambda name, bad=bad: bad) for bad in malformed_for(route)
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
        if (
            not isinstance(body, dict)
            or body.get("statusCode") != status
            or not ({"message", "error"} <= set(body))
        ):
            failures.append(
                f"{status} {method} {path[:90]}: not the error shape: {response.content[:120]!r}"
            )
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
    with_parameters = [route for route in routes if _PARAMETER.search(route)]
    paths = [fill(with_parameters[0], lambda name: NUL)] if with_parameters else []
    paths += [path for route in routes for path in paths_for(route, plausible)]
    for path in paths:
        # DELETE last, so a walked delete takes nothing away from the other methods.
        for method in METHODS:
            for client in (anonymous, signed_in):
                body = b"{}" if method in WRITE_METHODS else None
                check(send(client, method, path, body), method, path, failures)
                requests += 1
            if "logout" in path:
                sign_in(signed_in, owner)
    errors = {
        f"{r.name}: {r.getMessage()[:160]}" for r in caplog.records if r.levelno >= logging.ERROR
    }
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
    print(
        f"{part}: walked {len(routes)} of {len(every)} patterns, {requests} requests, {elapsed:.1f} s"
    )
    assert not failures, f"{len(failures)} bad answers:\n" + "\n".join(failures[:300])
    assert not errors, f"{len(errors)} distinct ERROR lines:\n" + "\n".join(sorted(errors)[:50])
    assert len(routes) > 40


def test_deep_and_huge_json_against_every_write_method_answers_4xx(world, caplog):
    """Every write method of every `/sfp/*` route, as both callers, with an array and an object
    nested far past the limit and a body one byte over it: never a 5xx, always the error shape;
    the owner's calls reach the parser (400 too deep, 413 too large)."""
    owner, plausible = world
    routes = [route for route, _ in url_patterns() if route.startswith("sfp/")]
    bodies = (DEEP_JSON, DEEP_OBJECT, huge_json())
    anonymous = Client(raise_request_exception=False)
    signed_in = sign_in(Client(raise_request_exception=False), owner)
    caplog.set_level(logging.WARNING)
    failures: list[str] = []
    owner_statuses: set[int] = set()
    for route in routes:
        path = paths_for(route, plausible)[0]
        for method in WRITE_METHODS:
            for body in bodies:
                for client in (anonymous, signed_in):
                    response = send(client, method, path, body)
                    check(response, method, path, failures)
                    if client is signed_in:
                        owner_statuses.add(response.status_code)
                if "logout" in path:
                    sign_in(signed_in, owner)
    errors = {r.getMessage()[:160] for r in caplog.records if r.levelno >= logging.ERROR}
    assert not failures, f"{len(failures)} bad answers:\n" + "\n".join(failures[:300])
    assert not errors, f"{len(errors)} distinct ERROR lines:\n" + "\n".join(sorted(errors))
    assert {400, 413} <= owner_statuses
