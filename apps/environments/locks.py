"""The lock queue: FIFO tickets per (repository, resource), leases that expire, automatic hand-off.

Locks are rows, not cache keys. Every change to a resource's queue first locks that resource's
row (`LockResource`, `SELECT … FOR UPDATE`), so concurrent requesters are serialised by the
database: there is never more than one holder, and tickets are served strictly in the order they
were taken (their id). When a holder releases, or its lease expires, the next queued ticket
acquires in the same transaction; expiry is applied by every read or change of the resource and by
the workers' periodic tick (`expire_due`), so no one has to poll for a hand-off to happen.
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.accounts.principal import Principal
from apps.core.events import publish
from apps.core.exceptions import Forbidden, InvalidRequest, NotFound
from apps.core.permissions import requires_role_message
from apps.environments.models import LockResource, LockStatus, LockTicket

MAX_LEASE_SECONDS = 24 * 3600
RECENTLY_RELEASED = timedelta(hours=1)


@dataclass(frozen=True)
class Holder:
    """Who asks for a lock: a person, an application token, or a task (by operation id)."""

    label: str
    user_id: str = ""
    token_id: str = ""
    operation_id: str = ""

    @classmethod
    def of(cls, principal: Principal) -> "Holder":
        if principal.is_token:
            return cls(label=f"token:{principal.token.name}", token_id=principal.token.pk)
        return cls(label=principal.user.email, user_id=str(principal.user.pk))

    @classmethod
    def task(cls, operation_id: str, label: str = "") -> "Holder":
        return cls(label=label or f"task:{operation_id}", operation_id=operation_id)


# Live group of every lock event (the lock board follows it).
LOCKS_FEED = "locks"


def _resource_row(repository: str, resource: str) -> LockResource:
    LockResource.objects.get_or_create(repository=repository, resource=resource)
    return LockResource.objects.select_for_update().get(repository=repository, resource=resource)


def _promote_next(row: LockResource, now) -> LockTicket | None:
    if row.tickets.filter(status=LockStatus.ACQUIRED).exists():
        return None
    following = row.tickets.filter(status=LockStatus.QUEUED).order_by("id").first()
    if following is None:
        return None
    following.status = LockStatus.ACQUIRED
    following.lease_start = now
    following.expires_at = now + timedelta(seconds=following.lease_duration_seconds)
    following.save(update_fields=["status", "lease_start", "expires_at", "updated_at"])
    return following


def _settle(row: LockResource) -> None:
    """Expire a lapsed holder and hand the lock on (call with the resource row locked)."""
    now = timezone.now()
    expired = row.tickets.filter(status=LockStatus.ACQUIRED, expires_at__lte=now).update(
        status=LockStatus.EXPIRED, released_at=now, released_by="lease expired"
    )
    if expired or not row.tickets.filter(status=LockStatus.ACQUIRED).exists():
        if _promote_next(row, now) is not None or expired:
            _announce(row)


def _announce(row: LockResource) -> None:
    """Tell subscribers of the resource (after commit) who holds it and who waits. Call with the
    resource row locked: its event number is taken here, in the same transaction."""
    LockResource.objects.filter(pk=row.pk).update(event_seq=F("event_seq") + 1)
    row.refresh_from_db(fields=["event_seq"])
    publish(
        [f"lock.{row.repository}.{row.resource}", f"project.{row.repository}", LOCKS_FEED],
        "environment.lock",
        lock_board_entry(row),
        seq=row.event_seq,
    )


def lock_board_entry(row: LockResource) -> dict:
    """A resource's holder and queue, as live events and snapshots describe it."""
    tickets = list(row.tickets.filter(status__in=[LockStatus.QUEUED, LockStatus.ACQUIRED]))
    holder = next((t for t in tickets if t.status == LockStatus.ACQUIRED), None)
    return {
        "repository": row.repository,
        "resource": row.resource,
        "isLocked": holder is not None,
        "lockedBy": holder.holder_label if holder else None,
        "expiresAt": holder.expires_at.isoformat() if holder and holder.expires_at else None,
        "queued": [t.holder_label for t in tickets if t.status == LockStatus.QUEUED],
    }


def request_lock(
    *,
    holder: Holder,
    repository: str,
    resource: str,
    lease_seconds: int,
    reason: str = "",
) -> LockTicket:
    if not 1 <= lease_seconds <= MAX_LEASE_SECONDS:
        raise InvalidRequest(
            f"leaseDurationSeconds must be between 1 and {MAX_LEASE_SECONDS}",
            details={"leaseDurationSeconds": [f"1..{MAX_LEASE_SECONDS}."]},
        )
    with transaction.atomic():
        row = _resource_row(repository, resource)
        _settle(row)
        live = row.tickets.filter(status__in=[LockStatus.QUEUED, LockStatus.ACQUIRED])
        same_holder = live.filter(
            Q(holder_label=holder.label)
            & Q(holder_operation_id=holder.operation_id)
            & ~Q(holder_label="")
        ).first()
        if same_holder is not None:
            return same_holder  # asking again returns the ticket you have: no self-deadlock
        ticket = LockTicket.objects.create(
            resource_row=row,
            ticket_id=uuid.uuid4(),
            status=LockStatus.QUEUED,
            lease_duration_seconds=lease_seconds,
            reason=reason[:500],
            holder_label=holder.label,
            holder_user_id=holder.user_id,
            holder_token_id=holder.token_id,
            holder_operation_id=holder.operation_id,
        )
        _promote_next(row, timezone.now())
        _announce(row)
    ticket.refresh_from_db()
    return ticket


def ticket_get(*, repository: str, resource: str, ticket_id) -> LockTicket:
    with transaction.atomic():
        row = (
            LockResource.objects.select_for_update()
            .filter(repository=repository, resource=resource)
            .first()
        )
        if row is not None:
            _settle(row)
    ticket = LockTicket.objects.filter(
        resource_row__repository=repository, resource_row__resource=resource, ticket_id=ticket_id
    ).first()
    if ticket is None:
        raise NotFound("Lock not found")
    return ticket


def _may_release(principal: Principal | None, ticket: LockTicket, holder: Holder | None) -> bool:
    if holder is not None:  # a task or a named holder releasing its own ticket
        if holder.operation_id:
            return ticket.holder_operation_id == holder.operation_id
        return bool(holder.label) and ticket.holder_label == holder.label
    if principal is None:
        return False
    if principal.roles & {"owner", "application"}:
        return True
    return bool(ticket.holder_user_id) and ticket.holder_user_id == str(principal.user.pk)


def release(
    *,
    repository: str,
    resource: str,
    ticket_id,
    principal: Principal | None = None,
    holder: Holder | None = None,
    released_by: str = "",
) -> LockTicket:
    """Release a held ticket (the next one acquires) or cancel a queued one."""
    with transaction.atomic():
        row = (
            LockResource.objects.select_for_update()
            .filter(repository=repository, resource=resource)
            .first()
        )
        ticket = (
            row.tickets.select_for_update().filter(ticket_id=ticket_id).first() if row else None
        )
        if ticket is None:
            raise NotFound("Lock not found")
        if not _may_release(principal, ticket, holder):
            raise Forbidden(requires_role_message(["lock holder", "owner", "application"]))
        now = timezone.now()
        by = released_by or (holder.label if holder else Holder.of(principal).label)
        if ticket.status == LockStatus.ACQUIRED:
            ticket.status = LockStatus.RELEASED
        elif ticket.status == LockStatus.QUEUED:
            ticket.status = LockStatus.CANCELLED
        else:
            return ticket  # already over: releasing again changes nothing
        ticket.released_at = now
        ticket.released_by = by[:254]
        ticket.save(update_fields=["status", "released_at", "released_by", "updated_at"])
        _settle(row)
        _announce(row)
    return ticket


def force_release(*, actor: Principal, ticket: LockTicket, request=None) -> LockTicket:
    """An owner frees a stuck lock (or drops a queued ticket): the next in line acquires. For the
    console's lock board and the dashboard's; audited as `lock.force_released`."""
    from apps.accounts.audit import audit_event

    if actor.is_token or "owner" not in actor.roles:
        raise Forbidden(requires_role_message(["owner"]))
    before = {"status": ticket.status, "holder": ticket.holder_label}
    released = release(
        repository=ticket.resource_row.repository, resource=ticket.resource_row.resource,
        ticket_id=ticket.ticket_id, principal=actor,
        released_by=f"force-released by {actor.user.email}",
    )  # fmt: skip
    audit_event(
        "lock.force_released", principal=actor, request=request, target_type="lock",
        target_id=str(ticket.ticket_id), before=before,
    )  # fmt: skip
    return released


def release_all_for_operation(operation_id: str) -> int:
    """Give up every ticket a task holds or waits with (the task was cancelled)."""
    released = 0
    tickets = LockTicket.objects.select_related("resource_row").filter(
        holder_operation_id=operation_id, status__in=[LockStatus.QUEUED, LockStatus.ACQUIRED]
    )
    for ticket in tickets:
        release(
            repository=ticket.resource_row.repository, resource=ticket.resource_row.resource,
            ticket_id=ticket.ticket_id, holder=Holder.task(operation_id),
            released_by="task cancelled",
        )  # fmt: skip
        released += 1
    return released


def tickets_for(*, repository: str, resource: str) -> list[LockTicket]:
    """Queued and acquired tickets, and those released in the last hour, in queue order."""
    with transaction.atomic():
        row = (
            LockResource.objects.select_for_update()
            .filter(repository=repository, resource=resource)
            .first()
        )
        if row is None:
            return []
        _settle(row)
    since = timezone.now() - RECENTLY_RELEASED
    return list(
        LockTicket.objects.filter(resource_row=row)
        .filter(Q(status__in=[LockStatus.QUEUED, LockStatus.ACQUIRED]) | Q(released_at__gte=since))
        .order_by("id")
    )


def current_holder(*, repository: str, resource: str) -> LockTicket | None:
    """The ticket that holds the resource now, if any."""
    return (
        LockTicket.objects.select_related("resource_row")
        .filter(
            resource_row__repository=repository,
            resource_row__resource=resource,
            status=LockStatus.ACQUIRED,
        )
        .first()
    )


def settle_lapsed(resources: set[tuple[str, str]]) -> int:
    """Apply lapsed leases among these (repository, resource) pairs and hand their locks on;
    one query when none has lapsed (the usual case)."""
    due = (
        LockTicket.objects.filter(status=LockStatus.ACQUIRED, expires_at__lte=timezone.now())
        .filter(resource_row__repository__in={repository for repository, _ in resources})
        .values_list("resource_row_id", "resource_row__repository", "resource_row__resource")
    )
    return _settle_rows([row_id for row_id, *key in due if tuple(key) in resources])


def expire_due() -> int:
    """Apply lapsed leases everywhere and hand the locks on (workers call this on their tick)."""
    due = (
        LockTicket.objects.filter(status=LockStatus.ACQUIRED, expires_at__lte=timezone.now())
        .values_list("resource_row_id", flat=True)
        .distinct()
    )
    return _settle_rows(list(due))


def _settle_rows(row_ids: list[int]) -> int:
    handled = 0
    for row_id in dict.fromkeys(row_ids):
        with transaction.atomic():
            row = LockResource.objects.select_for_update().get(pk=row_id)
            _settle(row)
        handled += 1
    return handled


def queue_position(ticket: LockTicket) -> int:
    """0 for the holder, 1.. for queued tickets, None-like -1 when over."""
    if ticket.status == LockStatus.ACQUIRED:
        return 0
    if ticket.status != LockStatus.QUEUED:
        return -1
    return (
        LockTicket.objects.filter(
            resource_row_id=ticket.resource_row_id, status=LockStatus.QUEUED, id__lt=ticket.id
        ).count()
        + 1
    )


def ticket_dto(ticket: LockTicket) -> dict:
    now = timezone.now()
    return {
        "id": ticket.id,
        "ticketId": str(ticket.ticket_id),
        "repository": ticket.resource_row.repository,
        "resource": ticket.resource_row.resource,
        "status": ticket.status,
        "queuePosition": queue_position(ticket),
        "holder": ticket.holder_label,
        "reason": ticket.reason,
        "leaseStart": ticket.lease_start.isoformat() if ticket.lease_start else None,
        "leaseDurationSeconds": ticket.lease_duration_seconds,
        "expiresAt": ticket.expires_at.isoformat() if ticket.expires_at else None,
        "expiresInSeconds": max(0, int((ticket.expires_at - now).total_seconds()))
        if ticket.expires_at and ticket.status == LockStatus.ACQUIRED
        else None,
        "releasedAt": ticket.released_at.isoformat() if ticket.released_at else None,
        "releasedBy": ticket.released_by or None,
        "createdAt": ticket.created_at.isoformat(),
        "updatedAt": ticket.updated_at.isoformat(),
    }
