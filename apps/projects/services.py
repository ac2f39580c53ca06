"""Onboarding, changing and removing projects: validation of identifiers, remote URLs and the
configuration document, platform detection, the dot-path patch and optimistic concurrency.

Every write runs in one transaction, holds the project's row lock while it compares versions (so
two writers presenting the same version cannot both win), validates the resulting project as a
whole before saving anything, and records an audit row with the change.
"""

import copy
import json
import re
from typing import Any
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction

from apps.accounts.audit import audit_event
from apps.accounts.principal import Principal
from apps.core.exceptions import Conflict, InvalidRequest, NotFound
from apps.projects.models import Platform, Project

MAX_CONFIGURATION_BYTES = 256 * 1024

# --- identifiers ------------------------------------------------------------------------------

# One path segment of a repository identifier: letters, digits, '_', '.', '-'; not '.' or '..'.
_SEGMENT = r"(?!\.{1,2}(?:/|$))[A-Za-z0-9_.-]{1,100}"
# Azure DevOps project and repository names may contain inner spaces.
_SPACED_SEGMENT = r"(?!\.{1,2}(?:/|$))[A-Za-z0-9_.-](?:[A-Za-z0-9_. -]{0,98}[A-Za-z0-9_.-])?"
_IDENTIFIER_SHAPES = {
    Platform.GITHUB: (re.compile(rf"{_SEGMENT}/{_SEGMENT}"), "owner/repo"),
    Platform.BITBUCKET: (re.compile(rf"{_SEGMENT}/{_SEGMENT}"), "workspace/repo"),
    Platform.GITLAB: (
        re.compile(rf"[1-9][0-9]{{0,19}}|{_SEGMENT}(?:/{_SEGMENT}){{1,20}}"),
        "group/project (subgroups allowed) or a numeric project id",
    ),
    Platform.AZURE_DEVOPS: (
        re.compile(rf"{_SEGMENT}/{_SPACED_SEGMENT}/{_SPACED_SEGMENT}"),
        "organization/project/repo",
    ),
    Platform.OTHER: (re.compile(rf"{_SEGMENT}(?:/{_SEGMENT}){{1,20}}"), "owner/repo"),
}


def validate_identifier(identifier: Any, *, platform: str) -> str:
    """The identifier, if its shape fits `platform`; else a 400 saying which shape is expected."""
    if not isinstance(identifier, str) or not identifier:
        raise InvalidRequest(
            "identifier is required", details={"identifier": ["A non-empty string."]}
        )
    if len(identifier) > 255:
        raise InvalidRequest(
            "identifier is longer than 255 characters", details={"identifier": ["Too long."]}
        )
    pattern, shape = _IDENTIFIER_SHAPES[platform]
    if not pattern.fullmatch(identifier):
        message = f"identifier {identifier!r} does not fit {platform}: expected {shape}"
        raise InvalidRequest(message, details={"identifier": [f"Expected {shape}."]})
    return identifier


# --- remote URLs ------------------------------------------------------------------------------

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")
_USER = re.compile(r"[A-Za-z0-9._~-]{1,64}")
# scp-like ssh: `git@github.com:acme/app.git`, `git@ssh.dev.azure.com:v3/org/project/repo`
_SCP_LIKE = re.compile(r"(?P<user>[A-Za-z0-9._~-]{1,64})@(?P<host>[^:/@\s]+):(?P<path>[^\s]+)")

# Host → platform; a host matches a domain when it is the domain or one of its subdomains.
_PLATFORM_DOMAINS = (
    ("github.com", Platform.GITHUB),
    ("gitlab.com", Platform.GITLAB),
    ("bitbucket.org", Platform.BITBUCKET),
    ("dev.azure.com", Platform.AZURE_DEVOPS),
    ("visualstudio.com", Platform.AZURE_DEVOPS),
)


def _bad_url(message: str) -> InvalidRequest:
    return InvalidRequest(
        f"remoteUrl {message}", details={"remoteUrl": ["Use an https or ssh git URL."]}
    )


def remote_url_host(remote_url: Any) -> str:
    """The host of an https or ssh git URL (lower-cased); a 400 for anything else."""
    if not isinstance(remote_url, str):
        raise _bad_url("must be a string")
    if not remote_url:
        raise _bad_url("is required")
    if len(remote_url) > 2048 or any(c.isspace() or ord(c) < 32 for c in remote_url):
        raise _bad_url("must be a single line of at most 2048 characters without spaces")
    scp = _SCP_LIKE.fullmatch(remote_url)
    if scp and "://" not in remote_url:
        host, path = scp["host"], scp["path"]
    else:
        try:
            parts = urlsplit(remote_url)
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            raise _bad_url("is not a valid URL") from None
        if parts.scheme not in ("https", "ssh"):
            raise _bad_url("must use https:// or ssh:// (or the scp-like git@host:path form)")
        if parts.password is not None:
            raise _bad_url("must not contain a password or token")
        if parts.username is not None and not _USER.fullmatch(parts.username):
            raise _bad_url("has an invalid user name")
        if parts.query or parts.fragment:
            raise _bad_url("must not have a query or fragment")
        host, path = parts.hostname or "", parts.path.strip("/")
    if not _HOST.fullmatch(host):
        raise _bad_url(f"has an invalid host {host!r}")
    if not path.strip("/"):
        raise _bad_url("must name a repository path")
    return host.lower()


def detect_platform(remote_url: str) -> str:
    """github | gitlab | bitbucket | azure-devops | other, from the remote URL's host."""
    host = remote_url_host(remote_url)
    for domain, platform in _PLATFORM_DOMAINS:
        if host == domain or host.endswith("." + domain):
            return platform.value
    return Platform.OTHER.value


# --- configuration ----------------------------------------------------------------------------


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _string_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _http_url(value) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


# Documented fields: (predicate, what it must be). null is accepted for each (meaning "unset").
_CONFIGURATION_FIELDS = {
    "displayName": (lambda v: isinstance(v, str), "a string"),
    "description": (lambda v: isinstance(v, str), "a string"),
    "branches": (_string_list, "a list of strings"),
    "devHubs": (_string_list, "a list of strings"),
    "autoReleaseFinalization": (lambda v: isinstance(v, bool), "a boolean"),
    "workItems": (lambda v: isinstance(v, dict), "an object"),
    "metricsAlertConfig": (lambda v: isinstance(v, dict), "an object"),
    "settings": (lambda v: isinstance(v, dict), "an object"),
}
_NESTED_FIELDS = {
    "workItems": {
        "provider": (lambda v: isinstance(v, str), "a string"),
        "jiraProjects": (_string_list, "a list of strings"),
        "baseUrl": (_http_url, "an http(s) URL"),
    },
    "settings": {
        "buildTimeout": (lambda v: _is_int(v) and v > 0, "a positive integer"),
        "parallelBuilds": (lambda v: _is_int(v) and v > 0, "a positive integer"),
    },
}


def validate_configuration(configuration: Any) -> dict:
    """The configuration, if every documented field has its documented type; unknown keys pass."""
    if not isinstance(configuration, dict):
        raise InvalidRequest(
            "configuration must be an object", details={"configuration": ["An object."]}
        )
    problems: dict[str, str] = {}  # path -> what it must be
    for name, (valid, kind) in _CONFIGURATION_FIELDS.items():
        value = configuration.get(name)
        if value is None:
            continue
        if not valid(value):
            problems[f"configuration.{name}"] = kind
            continue
        for nested, (nested_valid, nested_kind) in _NESTED_FIELDS.get(name, {}).items():
            nested_value = value.get(nested)
            if nested_value is not None and not nested_valid(nested_value):
                problems[f"configuration.{name}.{nested}"] = nested_kind
    if problems:
        raise InvalidRequest(
            "; ".join(f"{path} must be {kind}" for path, kind in problems.items()),
            details={path: [f"Must be {kind}."] for path, kind in problems.items()},
        )
    if len(json.dumps(configuration)) > MAX_CONFIGURATION_BYTES:
        raise InvalidRequest(
            f"configuration is larger than {MAX_CONFIGURATION_BYTES // 1024} KiB",
            details={"configuration": ["Too large."]},
        )
    return configuration


# --- dot-path patch ---------------------------------------------------------------------------

_PATH_KEY = re.compile(r"[A-Za-z0-9_$@-]{1,100}")
_MISSING = object()


def _patch_path(property_path: Any) -> list[str]:
    """The keys below `configuration` that `property_path` names ([] = the whole document)."""
    if not isinstance(property_path, str) or not property_path:
        raise InvalidRequest("property is required", details={"property": ["A dot path."]})
    head, *keys = property_path.split(".")
    if head != "configuration":
        raise InvalidRequest(
            f"Property {property_path!r} cannot be patched: use remoteUrl or configuration.<path>",
            details={"property": ["remoteUrl or configuration.<path>."]},
        )
    if not all(_PATH_KEY.fullmatch(key) for key in keys):
        raise InvalidRequest(
            f"Property {property_path!r} is not a valid dot path",
            details={"property": ["Keys of letters, digits, '_', '-', '$', '@' joined by '.'."]},
        )
    return keys


def _read(document: dict, keys: list[str]):
    node: Any = document
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return _MISSING
        node = node[key]
    return node


def _write(document: dict, keys: list[str], value) -> dict:
    """A copy of `document` with `value` at `keys`, creating missing objects on the way."""
    result = copy.deepcopy(document)
    node = result
    for depth, key in enumerate(keys[:-1], start=1):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            path = ".".join(["configuration", *keys[:depth]])
            raise InvalidRequest(
                f"{path} is not an object, so {'.'.join(['configuration', *keys])} cannot be set",
                details={"property": [f"{path} is not an object."]},
            )
        node = child
    node[keys[-1]] = value
    return result


# --- writes -----------------------------------------------------------------------------------


def _locked(identifier: str) -> Project:
    project = Project.objects.select_for_update().filter(identifier=identifier).first()
    if project is None:
        raise NotFound(f"Project {identifier} not found")
    return project


def _check_version(project: Project, version: Any) -> None:
    if version is None:
        return
    if not _is_int(version):
        raise InvalidRequest("version must be an integer", details={"version": ["Integer."]})
    if version != project.version:
        raise Conflict(f"Version mismatch: the project is at version {project.version}")


def _save_change(
    project: Project,
    *,
    remote_url: str,
    configuration: dict,
    actor: Principal,
    audit: tuple,
    request,
) -> Project:
    platform = detect_platform(remote_url)
    validate_identifier(project.identifier, platform=platform)
    validate_configuration(configuration)
    if remote_url == project.remote_url and configuration == project.configuration:
        return project  # nothing changes, so neither does the version
    project.remote_url, project.platform, project.configuration = (
        remote_url,
        platform,
        configuration,
    )
    project.version += 1
    project.save(update_fields=["remote_url", "platform", "configuration", "version", "updated_at"])
    before, after = audit
    audit_event(
        "project.updated",
        principal=actor,
        request=request,
        target_type="project",
        target_id=project.identifier,
        before=before,
        after=after | {"version": project.version},
    )
    return project


@transaction.atomic
def project_create(
    *,
    actor: Principal,
    identifier: Any,
    remote_url: Any,
    configuration: Any = None,
    request=None,
) -> Project:
    platform = detect_platform(remote_url)
    validate_identifier(identifier, platform=platform)
    configuration = validate_configuration({} if configuration is None else configuration)
    if Project.objects.filter(identifier=identifier).exists():
        raise Conflict("The project already exists")
    try:
        with transaction.atomic():
            project = Project.objects.create(
                identifier=identifier,
                remote_url=remote_url,
                platform=platform,
                configuration=configuration,
                created_by=actor.user.email,
            )
    except IntegrityError:
        raise Conflict("The project already exists") from None
    audit_event(
        "project.created",
        principal=actor,
        request=request,
        target_type="project",
        target_id=identifier,
        after={"identifier": identifier, "remoteUrl": remote_url, "platform": platform},
    )
    return project


@transaction.atomic
def project_patch(
    *,
    actor: Principal,
    identifier: str,
    property_path: Any,
    value: Any,
    version: Any = None,
    request=None,
) -> Project:
    """Set one property: `remoteUrl` (the platform is detected again) or `configuration[.<path>]`
    (missing objects on the path are created). With `version`, refuse unless it is current."""
    project = _locked(identifier)
    _check_version(project, version)
    if property_path == "remoteUrl":
        return _save_change(
            project,
            remote_url=value,
            configuration=project.configuration,
            actor=actor,
            audit=({"remoteUrl": project.remote_url}, {"remoteUrl": value}),
            request=request,
        )
    keys = _patch_path(property_path)
    previous = _read(project.configuration, keys)
    configuration = _write(project.configuration, keys, value) if keys else value
    return _save_change(
        project,
        remote_url=project.remote_url,
        configuration=configuration,
        actor=actor,
        audit=(
            {property_path: None if previous is _MISSING else previous},
            {property_path: value},
        ),
        request=request,
    )


@transaction.atomic
def project_update(
    *,
    actor: Principal,
    identifier: str,
    remote_url: Any,
    configuration: Any,
    version: Any = None,
    request=None,
) -> Project:
    """Replace the remote URL and the whole configuration at once (the console's edit form)."""
    project = _locked(identifier)
    _check_version(project, version)
    before = {"remoteUrl": project.remote_url, "configuration": project.configuration}
    return _save_change(
        project,
        remote_url=remote_url,
        configuration=configuration,
        actor=actor,
        audit=(before, {"remoteUrl": remote_url, "configuration": configuration}),
        request=request,
    )


@transaction.atomic
def project_delete(*, actor: Principal, identifier: str, request=None) -> None:
    project = _locked(identifier)
    snapshot = {
        "identifier": project.identifier,
        "remoteUrl": project.remote_url,
        "platform": project.platform,
        "version": project.version,
        "configuration": project.configuration,
    }
    project.delete()
    audit_event(
        "project.deleted",
        principal=actor,
        request=request,
        target_type="project",
        target_id=snapshot["identifier"],
        before=snapshot,
    )
