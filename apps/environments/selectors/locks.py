"""Reads of the lock queue. They never write: a lease that has lapsed shows as expired, and a
ticket whose request was granted elsewhere shows as cancelled, computed from the rows as they are
(the expiry pass and the next write on the resource make it so in the database).

`lock_state_dto` is the one shape of a resource's lock state (holder, queue, expiry): REST
(`lockStatus` of an environment), the socket's snapshots and updates, and the dashboard all use it.
"""

from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from apps.core.exceptions import NotFound
from apps.environments.models import LockRequest, LockResource, LockStatus, LockTicket

RECENTLY_RELEASED_SECONDS = 3600
LIVE = (LockStatus.QUEUED, LockStatus.ACQUIRED)


def effective_status(ticket: LockTicket, now: datetime | None = None) -> str:
    """The ticket's status as of now: a lapsed holder is expired; a queued ticket of a request
    that was granted elsewhere (or cancelled) is cancelled."""
    now = now or timezone.now()
    if ticket.status == LockStatus.ACQUIRED and ticket.expires_at and ticket.expires_at <= now:
        return LockStatus.EXPIRED
    if ticket.status == LockStatus.QUEUED and ticket.lock_request_id:
        request = ticket.lock_request
        if request.cancelled_at or (
            request.granted_ticket_id and request.granted_ticket_id != ticket.pk
        ):
            return LockStatus.CANCELLED
    return ticket.status


def _live_tickets():
    return LockTicket.objects.select_related("resource_row", "lock_request").filter(status__in=LIVE)


def lock_ticket_get(*, repository: str, resource: str, ticket_id) -> LockTicket:
    ticket = (
        LockTicket.objects.select_related("resource_row", "lock_request")
        .filter(
            resource_row__repository=repository,
            resource_row__resource=resource,
            ticket_id=ticket_id,
        )
        .first()
    )
    if ticket is None:
        raise NotFound("Lock not found")
    return ticket


def lock_ticket_find(ticket_id) -> LockTicket | None:
    """A ticket by its id alone (the console's and the dashboard's release buttons)."""
    return (
        LockTicket.objects.select_related("resource_row", "lock_request")
        .filter(ticket_id=ticket_id)
        .first()
    )


def lock_request_get(request_id) -> LockRequest:
    found = LockRequest.objects.select_related("granted_ticket__resource_row").filter(
        request_id=request_id
    )
    request = found.first()
    if request is None:
        raise NotFound("Lock request not found")
    return request


def lock_tickets_for(*, repository: str, resource: str) -> list[LockTicket]:
    """Queued and acquired tickets, and those ended in the last hour, in queue order."""
    since = timezone.now() - timezone.timedelta(seconds=RECENTLY_RELEASED_SECONDS)
    return list(
        LockTicket.objects.select_related("resource_row", "lock_request")
        .filter(resource_row__repository=repository, resource_row__resource=resource)
        .filter(Q(status__in=LIVE) | Q(released_at__gte=since))
        .order_by("id")
    )


def live_tickets_of(keys: set[tuple[str, str]]) -> dict[tuple[str, str], list[LockTicket]]:
    """The queued and acquired tickets of these (repository, resource) pairs, in one query."""
    by_key: dict[tuple[str, str], list[LockTicket]] = {key: [] for key in keys}
    if not keys:
        return by_key
    rows = _live_tickets().filter(
        resource_row__repository__in={repository for repository, _ in keys},
        resource_row__resource__in={resource for _, resource in keys},
    )
    for ticket in rows.order_by("id"):
        key = (ticket.resource_row.repository, ticket.resource_row.resource)
        if key in by_key:
            by_key[key].append(ticket)
    return by_key


def lock_states(keys: set[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """`lock_state_dto` of each (repository, resource) pair, in one query however many."""
    now = timezone.now()
    return {
        key: lock_state_dto(key[0], key[1], tickets, now=now)
        for key, tickets in live_tickets_of(keys).items()
    }


def lock_state(repository: str, resource: str) -> dict:
    return lock_states({(repository, resource)})[(repository, resource)]


def lock_event_seq(repository: str, resource: str) -> int:
    return (
        LockResource.objects.filter(repository=repository, resource=resource)
        .values_list("event_seq", flat=True)
        .first()
    ) or 0


def _seconds_until(moment: datetime | None, now: datetime) -> int | None:
    if moment is None:
        return None
    return max(0, int((moment - now).total_seconds()))


def lock_state_dto(
    repository: str, resource: str, tickets: list[LockTicket], *, now: datetime | None = None
) -> dict:
    """A resource's lock state from its live tickets (in queue order): who holds it until when,
    and who waits in which order, with an estimate of each wait."""
    now = now or timezone.now()
    holder = next((t for t in tickets if effective_status(t, now) == LockStatus.ACQUIRED), None)
    queued = [t for t in tickets if effective_status(t, now) == LockStatus.QUEUED]
    expires_in = _seconds_until(holder.expires_at, now) if holder else None
    wait = expires_in or 0
    queued_rows = []
    for position, ticket in enumerate(queued, start=1):
        queued_rows.append(
            {"position": position, "ticketId": str(ticket.ticket_id),
             "requestedBy": ticket.holder_label, "reason": ticket.reason,
             "estimatedWaitSeconds": wait}
        )  # fmt: skip
        wait += ticket.lease_duration_seconds
    current = None
    if holder is not None:
        current = {
            "ticketId": str(holder.ticket_id), "lockedBy": holder.holder_label,
            "lockReason": holder.reason,
            "leaseStart": holder.lease_start.isoformat() if holder.lease_start else None,
            "expiresAt": holder.expires_at.isoformat() if holder.expires_at else None,
            "expiresInSeconds": expires_in,
        }  # fmt: skip
    return {
        "repository": repository,
        "resource": resource,
        "isLocked": holder is not None,
        "currentLock": current,
        "queuedLocks": queued_rows,
    }


def queue_position(ticket: LockTicket, *, now: datetime | None = None) -> int:
    """0 for the holder, 1.. for a waiting ticket, -1 when it is over."""
    now = now or timezone.now()
    status = effective_status(ticket, now)
    if status == LockStatus.ACQUIRED:
        return 0
    if status != LockStatus.QUEUED:
        return -1
    ahead = _live_tickets().filter(
        resource_row_id=ticket.resource_row_id, status=LockStatus.QUEUED, id__lt=ticket.id
    )
    return 1 + sum(1 for t in ahead if effective_status(t, now) == LockStatus.QUEUED)


def current_holder(*, repository: str, resource: str) -> LockTicket | None:
    """The ticket that holds the resource now (a lapsed lease holds nothing), if any."""
    holder = (
        LockTicket.objects.select_related("resource_row")
        .filter(
            resource_row__repository=repository,
            resource_row__resource=resource,
            status=LockStatus.ACQUIRED,
        )
        .first()
    )
    if holder is None or effective_status(holder) != LockStatus.ACQUIRED:
        return None
    return holder


def holds_lock_now(operation_id: str) -> bool:
    """Whether a task holds any lock at this moment."""
    return LockTicket.objects.filter(
        holder_operation_id=operation_id, status=LockStatus.ACQUIRED
    ).exists()


def ticket_dto(ticket: LockTicket, *, position: int | None = None) -> dict:
    """A ticket as the published lock endpoints show it (`LockDto`, plus our fields)."""
    now = timezone.now()
    status = effective_status(ticket, now)
    return {
        "id": ticket.id,
        "ticketId": str(ticket.ticket_id),
        "repository": ticket.resource_row.repository,
        "resource": ticket.resource_row.resource,
        "status": status,
        "queuePosition": queue_position(ticket, now=now) if position is None else position,
        "holder": ticket.holder_label,
        "reason": ticket.reason,
        "requestId": str(ticket.lock_request.request_id) if ticket.lock_request_id else None,
        "leaseStart": ticket.lease_start.isoformat() if ticket.lease_start else None,
        "leaseDurationSeconds": ticket.lease_duration_seconds,
        "expiresAt": ticket.expires_at.isoformat() if ticket.expires_at else None,
        "expiresInSeconds": _seconds_until(ticket.expires_at, now)
        if status == LockStatus.ACQUIRED
        else None,
        "releasedAt": ticket.released_at.isoformat() if ticket.released_at else None,
        "releasedBy": ticket.released_by or None,
        "createdAt": ticket.created_at.isoformat(),
        "updatedAt": ticket.updated_at.isoformat(),
    }


def tickets_dto(tickets: list[LockTicket]) -> list[dict]:
    """Several tickets of one resource, with queue positions computed once for all."""
    now = timezone.now()
    position, rows = 0, []
    for ticket in tickets:
        status = effective_status(ticket, now)
        if status == LockStatus.QUEUED:
            position += 1
        rows.append(
            ticket_dto(
                ticket,
                position={LockStatus.ACQUIRED: 0, LockStatus.QUEUED: position}.get(status, -1),
            )
        )
    return rows


def lock_request_dto(request: LockRequest) -> dict:
    """A request for any one of a set: which resource it was granted, if any yet."""
    tickets = list(request.tickets.select_related("resource_row", "lock_request").order_by("id"))
    granted = next((t for t in tickets if t.pk == request.granted_ticket_id), None)
    now = timezone.now()
    if request.cancelled_at and granted is None:
        status = LockStatus.CANCELLED
    elif granted is not None:
        status = effective_status(granted, now)
    else:
        status = LockStatus.QUEUED
    return {
        "requestId": str(request.request_id),
        "repository": request.repository,
        "resources": request.resources,
        "status": status,
        "grantedResource": granted.resource_row.resource if granted else None,
        "ticketId": str(granted.ticket_id) if granted else None,
        "holder": request.holder_label,
        "reason": request.reason,
        "leaseDurationSeconds": request.lease_duration_seconds,
        "expiresAt": granted.expires_at.isoformat() if granted and granted.expires_at else None,
        "tickets": [
            {
                "resource": t.resource_row.resource,
                "ticketId": str(t.ticket_id),
                "status": effective_status(t, now),
                "queuePosition": queue_position(t, now=now),
            }
            for t in tickets
        ],
        "createdAt": request.created_at.isoformat(),
    }
