"""Writes of environments per repository: create, update, delete, and locking (one, or any free
one of a set) with credentials handed only to the current holder.

Rules: names are unique within a repository; one default per category; environments in the
`release` category (production) are locked, deployed to, and have credentials read only by
owners and application tokens; credentials go only to the holder of the environment's lock, and
only to owners and application tokens; every hand-out is audited.
"""

from django.db import IntegrityError, transaction
from django.http import HttpRequest

from apps.accounts.audit import audit_event
from apps.accounts.principal import Principal
from apps.accounts.roles import PRIVILEGED, require_any
from apps.core.exceptions import Conflict, Forbidden, InvalidRequest
from apps.environments.models import (
    Category,
    Environment,
    LockRequest,
    LockStatus,
    LockTicket,
    SalesforceOrg,
)
from apps.environments.selectors.locks import effective_status, lock_ticket_get
from apps.environments.services import locks
from apps.integrations.salesforce import SalesforceError, connect, parse_auth_url
from apps.integrations.vault import unseal_from

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


def _require_privileged_for_release(actor: Principal, environment: Environment, what: str) -> None:
    if environment.category == Category.RELEASE:
        require_any(actor, PRIVILEGED, why=f"{what} a release environment")


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


def _check_wait(wait_seconds: float) -> None:
    if not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
        raise InvalidRequest(
            f"waitTimeoutSeconds must be 0..{MAX_WAIT_SECONDS}",
            details={"waitTimeoutSeconds": [f"0..{MAX_WAIT_SECONDS}."]},
        )


def environment_lock(
    *,
    actor: Principal | None,
    environment: Environment,
    lease_seconds: int,
    reason: str = "",
    wait_seconds: float = 0,
    holder: locks.Holder | None = None,
    idempotency_key: str = "",
) -> LockTicket:
    """Queue for the environment's lock; optionally wait (bounded) until it is acquired. The
    wait sleeps until the hand-off wakes it, holding no database connection busy."""
    if actor is not None:
        _require_privileged_for_release(actor, environment, "locking")
    _check_wait(wait_seconds)
    ticket = locks.lock_request(
        holder=holder or locks.Holder.of(actor),
        repository=environment.project.identifier,
        resource=environment.lock_resource,
        lease_seconds=lease_seconds,
        reason=reason,
        idempotency_key=idempotency_key,
    )
    if ticket.status == LockStatus.QUEUED and wait_seconds > 0:
        ticket = locks.lock_wait(ticket=ticket, seconds=wait_seconds)
    return ticket


def environment_lock_any(
    *,
    actor: Principal,
    environments: list[Environment],
    lease_seconds: int,
    reason: str = "",
    wait_seconds: float = 0,
    idempotency_key: str = "",
) -> LockRequest:
    """Lock whichever of these environments (of one repository) is free first."""
    if not environments:
        raise InvalidRequest("No environment matches", details={"environments": ["None match."]})
    repositories = {e.project.identifier for e in environments}
    if len(repositories) != 1:
        raise InvalidRequest("Environments of one repository only")
    for environment in environments:
        _require_privileged_for_release(actor, environment, "locking")
    _check_wait(wait_seconds)
    request = locks.lock_request_any(
        holder=locks.Holder.of(actor),
        repository=repositories.pop(),
        resources=[e.lock_resource for e in environments],
        lease_seconds=lease_seconds,
        reason=reason,
        idempotency_key=idempotency_key,
    )
    if not request.granted_ticket_id and wait_seconds > 0:
        request = locks.lock_request_wait(request=request, seconds=wait_seconds)
    return request


def environment_credentials(
    *,
    actor: Principal,
    environment: Environment,
    ticket_id,
    auth_type: str = "accessToken",
    request: HttpRequest | None = None,
) -> dict:
    """The org's credentials, for the current holder of the environment's lock only."""
    require_any(actor, PRIVILEGED)
    ticket = lock_ticket_get(
        repository=environment.project.identifier, resource=environment.lock_resource,
        ticket_id=ticket_id,
    )  # fmt: skip
    status = effective_status(ticket)
    if status != LockStatus.ACQUIRED:
        raise Forbidden(f"Lock ticket {ticket_id} is {status}, not acquired: no credentials")
    if ticket.holder_key != locks.Holder.of(actor).key:
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
