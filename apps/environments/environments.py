"""Environments per repository and their locks: create, update, delete, list, orchestration
order, and locking with credentials handed only to the current holder.

Rules: names are unique within a repository; one default per category; environments in the
`release` category (production) are locked, deployed to, and have credentials read only by
owners and application tokens; credentials go only to the holder of the environment's lock, and
only to owners and application tokens; every hand-out is audited.
"""

import time

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from apps.accounts.audit import audit_event
from apps.accounts.principal import Principal
from apps.core.exceptions import Conflict, Forbidden, InvalidRequest, NotFound
from apps.core.permissions import requires_role_message
from apps.environments import locks
from apps.environments.models import Category, Environment, LockStatus, LockTicket, SalesforceOrg
from apps.environments.salesforce import SalesforceError, connect, parse_auth_url
from apps.integrations.vault import unseal_from

PRIVILEGED = ("owner", "application")
MAX_WAIT_SECONDS = 120
EDITABLE = {
    "description": "description",
    "branch": "branch",
    "tags": "tags",
    "metadata": "metadata",
    "isActive": "is_active",
    "isDefault": "is_default",
    "orchestrationOrder": "orchestration_order",
    "devHubUsername": "devhub_username",
}


def environment_get(environment_id) -> Environment:
    found = Environment.objects.select_related("project", "org").filter(pk=environment_id).first()
    if found is None:
        raise NotFound(f"Environment {environment_id} not found")
    return found


def _require_privileged_for_release(actor: Principal, environment: Environment, what: str) -> None:
    if environment.category == Category.RELEASE and not actor.roles & set(PRIVILEGED):
        raise Forbidden(requires_role_message(PRIVILEGED) + f" ({what} a release environment)")


def _org(username: str | None) -> SalesforceOrg | None:
    if not username:
        return None
    org = SalesforceOrg.objects.filter(username__iexact=username).first()
    if org is None:
        raise InvalidRequest(
            f"Org {username} is not registered", details={"salesforceUsername": ["Unknown org."]}
        )
    return org


def _snapshot(environment: Environment) -> dict:
    return {
        "name": environment.name,
        "category": environment.category,
        "salesforceUsername": environment.org.username if environment.org else None,
        "branch": environment.branch,
        "isActive": environment.is_active,
        "isDefault": environment.is_default,
    }


def _save(environment: Environment) -> None:
    if environment.is_default:
        Environment.objects.filter(
            project=environment.project, category=environment.category, is_default=True
        ).exclude(pk=environment.pk).update(is_default=False)
    try:
        with transaction.atomic():
            environment.save()
    except IntegrityError:
        raise Conflict(
            f"Environment {environment.name} already exists in {environment.project.identifier}"
        ) from None


@transaction.atomic
def environment_create(
    *, actor: Principal, project, fields: dict, request: HttpRequest | None = None
) -> Environment:
    environment = Environment(
        project=project,
        name=fields["name"],
        category=fields["category"],
        org=_org(fields.get("salesforceUsername")),
        **{model: fields[api] for api, model in EDITABLE.items() if api in fields},
    )
    _save(environment)
    audit_event(
        "environment.created", principal=actor, request=request, target_type="environment",
        target_id=environment.pk, after=_snapshot(environment),
    )  # fmt: skip
    return environment


@transaction.atomic
def environment_update(
    *, actor: Principal, environment: Environment, fields: dict, request: HttpRequest | None = None
) -> Environment:
    before = _snapshot(environment)
    if "salesforceUsername" in fields:
        environment.org = _org(fields["salesforceUsername"])
    if "category" in fields:
        environment.category = fields["category"]
    for api, model in EDITABLE.items():
        if api in fields:
            setattr(environment, model, fields[api])
    _save(environment)
    audit_event(
        "environment.updated", principal=actor, request=request, target_type="environment",
        target_id=environment.pk, before=before, after=_snapshot(environment),
    )  # fmt: skip
    return environment


@transaction.atomic
def environment_patch_metadata(
    *, actor: Principal, environment: Environment, changes: dict, request: HttpRequest | None = None
) -> Environment:
    """Merge keys into the metadata; a key set to null is removed."""
    before = dict(environment.metadata)
    merged = dict(environment.metadata)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    environment.metadata = merged
    environment.save(update_fields=["metadata", "updated_at"])
    audit_event(
        "environment.metadata_patched", principal=actor, request=request,
        target_type="environment", target_id=environment.pk, before=before, after=merged,
    )  # fmt: skip
    return environment


@transaction.atomic
def environment_delete(
    *, actor: Principal, environment: Environment, request: HttpRequest | None = None
) -> None:
    before = _snapshot(environment)
    environment_id = environment.pk
    environment.delete()  # the org is untouched
    audit_event(
        "environment.deleted", principal=actor, request=request, target_type="environment",
        target_id=environment_id, before=before,
    )  # fmt: skip


# --- locks and credentials ------------------------------------------------------------------


def lock_status(environment: Environment) -> dict:
    return lock_statuses([environment])[environment.pk]


def lock_statuses(environments: list[Environment]) -> dict:
    """Each environment's lock holder and queue (keyed by environment id), in a constant number
    of queries however many environments: lapsed leases among them are settled first."""
    wanted = {(e.project.identifier, e.lock_resource) for e in environments}
    locks.settle_lapsed(wanted)
    tickets_by_resource: dict[tuple[str, str], list[LockTicket]] = {key: [] for key in wanted}
    live = (
        LockTicket.objects.select_related("resource_row")
        .filter(status__in=[LockStatus.QUEUED, LockStatus.ACQUIRED])
        .filter(resource_row__repository__in={repository for repository, _ in wanted})
        .order_by("id")
    )
    for ticket in live:
        key = (ticket.resource_row.repository, ticket.resource_row.resource)
        if key in tickets_by_resource:
            tickets_by_resource[key].append(ticket)
    return {
        e.pk: _status_of(tickets_by_resource[(e.project.identifier, e.lock_resource)])
        for e in environments
    }


def _status_of(tickets: list[LockTicket]) -> dict:
    holder = next((t for t in tickets if t.status == LockStatus.ACQUIRED), None)
    queued = [t for t in tickets if t.status == LockStatus.QUEUED]
    now = timezone.now()
    expires_in = (
        max(0, int((holder.expires_at - now).total_seconds()))
        if holder and holder.expires_at
        else None
    )
    wait = expires_in or 0
    queued_rows = []
    for position, ticket in enumerate(queued, start=1):
        queued_rows.append(
            {"position": position, "requestedBy": ticket.holder_label,
             "ticketId": str(ticket.ticket_id), "estimatedWaitSeconds": wait}
        )  # fmt: skip
        wait += ticket.lease_duration_seconds
    current = None
    if holder:
        current = {
            "lockedBy": holder.holder_label, "lockReason": holder.reason,
            "expiresAt": holder.expires_at.isoformat() if holder.expires_at else None,
            "expiresInSeconds": expires_in, "ticketId": str(holder.ticket_id),
        }  # fmt: skip
    return {"isLocked": holder is not None, "currentLock": current, "queuedLocks": queued_rows}


def environment_lock(
    *,
    actor: Principal | None,
    environment: Environment,
    lease_seconds: int,
    reason: str = "",
    wait_seconds: float = 0,
    holder: locks.Holder | None = None,
) -> LockTicket:
    """Queue for the environment's lock; optionally wait (bounded) until it is acquired."""
    if actor is not None:
        _require_privileged_for_release(actor, environment, "locking")
    if not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
        raise InvalidRequest(f"waitTimeoutSeconds must be 0..{MAX_WAIT_SECONDS}")
    ticket = locks.request_lock(
        holder=holder or locks.Holder.of(actor),
        repository=environment.project.identifier,
        resource=environment.lock_resource,
        lease_seconds=lease_seconds,
        reason=reason,
    )
    deadline = time.monotonic() + wait_seconds
    while ticket.status == LockStatus.QUEUED and time.monotonic() < deadline:
        time.sleep(0.2)
        ticket = locks.ticket_get(
            repository=environment.project.identifier,
            resource=environment.lock_resource,
            ticket_id=ticket.ticket_id,
        )
    return ticket


def environment_credentials(
    *,
    actor: Principal,
    environment: Environment,
    ticket_id,
    auth_type: str = "accessToken",
    request: HttpRequest | None = None,
) -> dict:
    """The org's credentials, for the current holder of the environment's lock only."""
    if not actor.roles & set(PRIVILEGED):
        raise Forbidden(requires_role_message(PRIVILEGED))
    ticket = locks.ticket_get(
        repository=environment.project.identifier, resource=environment.lock_resource,
        ticket_id=ticket_id,
    )  # fmt: skip
    holder = locks.Holder.of(actor)
    if ticket.status != LockStatus.ACQUIRED:
        raise Forbidden(f"Lock ticket {ticket_id} is {ticket.status}, not acquired: no credentials")
    if ticket.holder_label != holder.label:
        raise Forbidden("Credentials go only to the holder of the environment's lock")
    if environment.org is None:
        raise InvalidRequest(f"Environment {environment.name} has no registered org")
    auth_url = unseal_from(environment.org, "auth_url").value
    credentials = {
        "environmentId": str(environment.pk),
        "environmentName": environment.name,
        "salesforceUsername": environment.org.username,
        "instanceUrl": environment.org.instance_url,
        "ticketId": str(ticket.ticket_id),
    }
    if auth_type == "sfdxAuthUrl":
        credentials["sfdxAuthUrl"] = auth_url
    elif auth_type == "accessToken":
        try:
            identity = connect(parse_auth_url(auth_url))
        except SalesforceError as error:
            raise InvalidRequest(error.message) from None
        credentials |= {"accessToken": identity.access_token, "instanceUrl": identity.instance_url}
    else:
        raise InvalidRequest(
            "authType must be accessToken or sfdxAuthUrl",
            details={"authType": ["accessToken or sfdxAuthUrl."]},
        )
    audit_event(
        "credential.read", principal=actor, request=request, target_type="environment",
        target_id=environment.pk, after={"authType": auth_type, "ticketId": str(ticket.ticket_id),
                                         "org": environment.org.username},
    )  # fmt: skip
    return credentials


def orchestration_order(*, project, category: str, include_inactive: bool) -> list[str]:
    environments = Environment.objects.filter(project=project, category=category)
    if not include_inactive:
        environments = environments.filter(is_active=True)
    return list(environments.order_by("orchestration_order", "name").values_list("name", flat=True))
