"""The routing table: which event on which branch starts which pipeline, per project.

The defaults follow the published behaviour: a push to the default branch or a release branch
(`release/*`, `release-*`, plus the project's `configuration.branches`) builds; a pull request
opened, synchronised or reopened validates against a review environment; a closed one releases
its review environment. A project replaces the table by setting `configuration.webhookRoutes`
through the published PATCH (optimistic concurrency applies): a list of
`{"event", "actions"?, "branches"?, "pipeline"}` where branches are glob patterns and
`$default` stands for the repository's default branch.
"""

from dataclasses import dataclass
from fnmatch import fnmatchcase

from apps.core.exceptions import InvalidRequest

DEFAULT_BRANCH = "$default"
PIPELINES = ("build", "validate", "release-review-environment")

DEFAULT_ROUTES = (
    {"event": "push", "branches": [DEFAULT_BRANCH, "release/*", "release-*"], "pipeline": "build"},
    {
        "event": "pull_request",
        "actions": ["opened", "synchronize", "reopened"],
        "pipeline": "validate",
    },
    {"event": "pull_request", "actions": ["closed"], "pipeline": "release-review-environment"},
)


@dataclass(frozen=True)
class EventFacts:
    event: str
    action: str
    branch: str
    default_branch: str


def routes_for(configuration: dict) -> list[dict]:
    """The project's table, or the defaults with its extra build branches added."""
    configured = configuration.get("webhookRoutes")
    if configured is not None:
        return routes_validated(configured)
    routes = [dict(route) for route in DEFAULT_ROUTES]
    extra = [b for b in configuration.get("branches") or [] if isinstance(b, str)]
    routes[0]["branches"] = routes[0]["branches"] + extra
    return routes


def routes_validated(routes) -> list[dict]:
    """The table as given, or InvalidRequest naming the first bad entry."""
    if not isinstance(routes, list):
        raise InvalidRequest("webhookRoutes must be a list", details={"webhookRoutes": ["List."]})
    for index, route in enumerate(routes):
        where = f"webhookRoutes[{index}]"
        if not isinstance(route, dict) or not isinstance(route.get("event"), str):
            raise InvalidRequest(f"{where} needs an event", details={where: ["event: a string."]})
        if route.get("pipeline") not in PIPELINES:
            raise InvalidRequest(
                f"{where}.pipeline must be one of {', '.join(PIPELINES)}",
                details={where: [f"pipeline: one of {', '.join(PIPELINES)}."]},
            )
        for key in ("actions", "branches"):
            value = route.get(key)
            if value is not None and not (
                isinstance(value, list) and all(isinstance(v, str) for v in value)
            ):
                raise InvalidRequest(
                    f"{where}.{key} must be a list of strings",
                    details={where: [f"{key}: a list of strings."]},
                )
    return routes


def route_match(routes: list[dict], facts: EventFacts) -> str | None:
    """The pipeline of the first route the event matches, or None."""
    for route in routes:
        if route["event"] != facts.event:
            continue
        if route.get("actions") is not None and facts.action not in route["actions"]:
            continue
        branches = route.get("branches")
        if branches is not None and not any(
            facts.branch == facts.default_branch
            if pattern == DEFAULT_BRANCH
            else fnmatchcase(facts.branch, pattern)
            for pattern in branches
        ):
            continue
        return route["pipeline"]
    return None
