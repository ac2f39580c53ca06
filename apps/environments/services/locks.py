"""Writes of the lock queue: FIFO tickets per (repository, resource), leases that expire,
hand-off to the next in line, and requests for any one free resource of a set.

Rules (docs/locks.md has them for users):

- **One request, one ticket.** Every request creates its own ticket, whoever asks; two CI jobs
  sharing one application token get two tickets. A request is only answered with an existing
  ticket when it says so: the same `idempotency_key` from the same caller (a retry after a
  timeout), or a task asking again under its own operation id (its retries keep their place).
- **A ticket is released or extended by its holder** — the same token, the same login session
  (refreshes keep it), the same task — or by an owner or an application token (published), and
  always by its ticket id: releasing ticket A never touches ticket B. Display names are never
  compared.
- **Serialised by the database.** Every change to a resource's queue first locks the resource's
  row (`SELECT … FOR UPDATE`). Several rows are locked in one fixed order (by resource name), and
  a request row (`LockRequest`) only after the resource rows, so waits cannot form a cycle; a
  deadlock PostgreSQL still reports is retried.
- **Hand-off in the same transaction.** When the holder releases (or its lapsed lease is applied),
  the next live ticket acquires before commit, and its waiters are woken on commit
  (`apps.environments.handoff`). Lapsed leases are applied by the scheduled expiry pass
  (`locks_expire_due`) and by any write on the resource; reads never write.
- **Any one of a set.** A request names several resources; it is granted the first free one (in
  the order given), else it waits with one ticket on each and is granted the first to free up.
  Its request row is locked before any of its tickets acquires, so it is never granted twice; the
  tickets it no longer needs are cancelled by the next write on their resource (reads already
  show them cancelled).
"""

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from apps.accounts.principal import Principal
from apps.accounts.roles import PRIVILEGED, is_privileged, require_human_owner
from apps.core.events import publish
from apps.core.exceptions import Conflict, Forbidden, InvalidRequest, NotFound
from apps.core.permissions import requires_role_message
from apps.environments import handoff
from apps.environments.metrics import LOCK_HOLD, LOCK_WAIT
from apps.environments.models import (
    Environment,
    LockRequest,
    LockResource,
    LockStatus,
    LockTicket,
)
from apps.environments.selectors.locks import (
    LIVE,
    effective_status,
    lock_request_get,
    lock_state_dto,
    lock_ticket_get,
)

MAX_LEASE_SECONDS = 24 * 3600
MAX_SET_SIZE = 50
ENVIRONMENT_PREFIX = "env:"
FREE_FORM_PREFIX = "custom:"
LOCKS_FEED = "locks"  # live group of every lock event (the lock board follows it)
DEADLOCK_RETRIES = 3

# Called with each ticket the moment it acquires, inside the granting transaction: layers above
# (the task layer) react to a hand-off here without this app importing them.
_grant_listeners: list = []


def on_grant(listener):
    """Register `listener(ticket)` to run inside every transaction that grants a ticket."""
    _grant_listeners.append(listener)
    return listener


@dataclass(frozen=True)
class Holder:
    """Who holds a ticket. `key` is the identity compared for release, extension and credentials
    (`token:<id>`, `session:<id>`, `user:<id>`, `task:<operationId>`); `label` is for people."""

    key: str
    label: str
    user_id: str = ""
    token_id: str = ""
    operation_id: str = ""

    @classmethod
    def of(cls, principal: Principal) -> "Holder":
        if principal.is_token:
            token = principal.token
            return cls(key=f"token:{token.pk}", label=f"token:{token.name}", token_id=token.pk)
        user_id = str(principal.user.pk)
        key = f"session:{principal.session_id}" if principal.session_id else f"user:{user_id}"
        return cls(key=key, label=principal.user.email, user_id=user_id)

    @classmethod
    def task(cls, operation_id: str, label: str = "") -> "Holder":
        return cls(
            key=f"task:{operation_id}",
            label=label or f"task:{operation_id}",
            operation_id=operation_id,
        )


# --- targets ----------------------------------------------------------------------------------


def lock_target(*, repository: str, resource: str) -> str:
    """The canonical resource a caller names, checked: the repository must be a registered
    project; `<name>` or `env:<name>` must be one of its environments; anything else must use the
    free-form prefix `custom:`. Typos are 404s, never a lock on nothing."""
    from apps.projects.selectors import project_exists

    if not project_exists(repository):
        raise NotFound(f"Project {repository} not found")
    resource = (resource or "").strip()
    if resource.startswith(FREE_FORM_PREFIX):
        if len(resource) == len(FREE_FORM_PREFIX):
            raise InvalidRequest(
                "Name the free-form resource after 'custom:'", details={"resource": ["Empty."]}
            )
        return resource
    name = resource.removeprefix(ENVIRONMENT_PREFIX)
    if ":" in name or not name:
        raise InvalidRequest(
            f"Resource {resource!r} is neither an environment name (or env:<name>) nor a "
            f"free-form resource (custom:<anything>)",
            details={"resource": ["An environment name, env:<name> or custom:<anything>."]},
        )
    if not Environment.objects.filter(project__identifier=repository, name=name).exists():
        raise NotFound(f"Environment {name} not found in {repository}")
    return ENVIRONMENT_PREFIX + name


def _check_lease(lease_seconds: int) -> None:
    if not 1 <= lease_seconds <= MAX_LEASE_SECONDS:
        raise InvalidRequest(
            f"leaseDurationSeconds must be between 1 and {MAX_LEASE_SECONDS}",
            details={"leaseDurationSeconds": [f"1..{MAX_LEASE_SECONDS}."]},
        )


# --- the queue under its row lock -------------------------------------------------------------


def _retrying(write):
    """Run a write in its own transaction, again if PostgreSQL picked it as a deadlock victim."""
    if connection.in_atomic_block:  # part of a caller's transaction: it decides
        return write()
    for attempt in range(DEADLOCK_RETRIES):
        try:
            with transaction.atomic():
                return write()
        except OperationalError as error:
            code = getattr(getattr(error, "__cause__", None), "sqlstate", None)
            if code != "40P01" or attempt == DEADLOCK_RETRIES - 1:
                raise
            time.sleep(0.005 * (attempt + 1))
    raise AssertionError("unreachable")


def _locked_rows(repository: str, resources: list[str], *, create: bool) -> list[LockResource]:
    """The resources' rows, locked in name order (the one order every writer uses)."""
    if create:
        LockResource.objects.bulk_create(
            [LockResource(repository=repository, resource=r) for r in resources],
            ignore_conflicts=True,
        )
    return list(
        LockResource.objects.select_for_update()
        .filter(repository=repository, resource__in=resources)
        .order_by("resource")
    )


def _locked_row(repository: str, resource: str, *, create: bool) -> LockResource | None:
    rows = _locked_rows(repository, [resource], create=create)
    return rows[0] if rows else None


def _live(row: LockResource) -> list[LockTicket]:
    tickets = list(
        LockTicket.objects.select_related("lock_request")
        .filter(resource_row=row, status__in=LIVE)
        .order_by("id")
    )
    for ticket in tickets:
        ticket.resource_row = row
    return tickets


def _end(ticket: LockTicket, status: str, by: str, now: datetime) -> None:
    if ticket.status == LockStatus.ACQUIRED and ticket.lease_start:
        held = (now - ticket.lease_start).total_seconds()
        resource = ticket.resource_row.resource
        transaction.on_commit(lambda: LOCK_HOLD.labels(resource).observe(held))
    ticket.status = status
    ticket.released_at = now
    ticket.released_by = by[:254]
    ticket.save(update_fields=["status", "released_at", "released_by", "updated_at"])
    handoff.signal(
        [ticket.ticket_id, ticket.lock_request.request_id if ticket.lock_request_id else ""]
    )


def _grant(ticket: LockTicket, now: datetime) -> None:
    ticket.status = LockStatus.ACQUIRED
    ticket.lease_start = now
    ticket.expires_at = now + timedelta(seconds=ticket.lease_duration_seconds)
    ticket.save(update_fields=["status", "lease_start", "expires_at", "updated_at"])
    waited = max(0.0, (now - ticket.created_at).total_seconds())
    resource = ticket.resource_row.resource
    transaction.on_commit(lambda: LOCK_WAIT.labels(resource).observe(waited))
    handoff.signal(
        [ticket.ticket_id, ticket.lock_request.request_id if ticket.lock_request_id else ""]
    )
    for listener in _grant_listeners:
        listener(ticket)


def _settle(live: list[LockTicket], now: datetime) -> bool:
    """Apply a lapsed lease, drop tickets whose request no longer needs them, and hand a free
    resource to the first ticket in line. Call with the resource row locked; `live` (its queued
    and acquired tickets in order) is updated in place. True when anything changed."""
    changed = False
    for ticket in live:
        status = effective_status(ticket, now)
        if status == LockStatus.EXPIRED:
            _end(ticket, LockStatus.EXPIRED, "lease expired", now)
            changed = True
        elif status == LockStatus.CANCELLED:
            _end(ticket, LockStatus.CANCELLED, "request served by another resource", now)
            changed = True
    if any(t.status == LockStatus.ACQUIRED for t in live):
        return changed
    for ticket in live:
        if ticket.status != LockStatus.QUEUED:
            continue
        if ticket.lock_request_id:
            # The request row decides: locked here, it is granted on one resource at most. One
            # locked by another writer is being served (or cancelled) by it right now: skip its
            # ticket rather than wait, so writers never wait on each other's request rows.
            request = _lock_request_row(ticket.lock_request_id)
            if request is None:
                continue
            ticket.lock_request = request
            if request.cancelled_at or request.granted_ticket_id:
                _end(ticket, LockStatus.CANCELLED, "request served by another resource", now)
                changed = True
                continue
            _grant(ticket, now)
            request.granted_ticket = ticket
            request.save(update_fields=["granted_ticket"])
            others = [r for r in request.resources if r != ticket.resource_row.resource]
            _tidy_after_commit(request.repository, others)
        else:
            _grant(ticket, now)
        return True
    return changed


def _lock_request_row(pk: int) -> LockRequest | None:
    """The request row, locked; None when another transaction holds it."""
    rows = LockRequest.objects.filter(pk=pk)
    if connection.features.has_select_for_update_skip_locked:
        return rows.select_for_update(skip_locked=True).first()
    return rows.select_for_update().first()


def _announce(row: LockResource, live: list[LockTicket]) -> None:
    """Tell subscribers (after commit) the resource's lock state, numbered in its own counter.
    Call with the row locked: the number is taken in the same transaction as the change."""
    row.event_seq += 1
    LockResource.objects.filter(pk=row.pk).update(event_seq=row.event_seq)
    state = lock_state_dto(
        row.repository, row.resource, [t for t in live if t.status in LIVE], now=timezone.now()
    )
    publish(
        [f"lock.{row.repository}.{row.resource}", f"project.{row.repository}", LOCKS_FEED],
        "environment.lock",
        state,
        seq=row.event_seq,
    )


def _tidy_after_commit(repository: str, resources: list[str]) -> None:
    """Settle and announce these resources in a transaction of their own, after this one commits
    (their tickets of a request just served or cancelled elsewhere are dropped there)."""

    def tidy() -> None:
        def write() -> None:
            now = timezone.now()
            for row in _locked_rows(repository, resources, create=False):  # in name order
                live = _live(row)
                if _settle(live, now):
                    _announce(row, live)

        _retrying(write)

    if resources:
        transaction.on_commit(tidy)


# --- requests ---------------------------------------------------------------------------------


def lock_request(
    *,
    holder: Holder,
    repository: str,
    resource: str,
    lease_seconds: int,
    reason: str = "",
    idempotency_key: str = "",
) -> LockTicket:
    """A new ticket in the resource's queue (acquired at once when it is free)."""
    _check_lease(lease_seconds)
    idempotency_key = (idempotency_key or "")[:200]

    def write() -> LockTicket:
        row = _locked_row(repository, resource, create=True)
        if idempotency_key:
            earlier = _ticket_for_key(holder, idempotency_key)
            if earlier is not None:
                return _same_target(earlier, row)
        live = _live(row)
        now = timezone.now()
        changed = _settle(live, now)
        if holder.operation_id:
            own = next((t for t in live if t.holder_key == holder.key and t.status in LIVE), None)
            if own is not None:  # the task's retry keeps its place
                if changed:
                    _announce(row, live)
                return own
        ticket = LockTicket(
            resource_row=row, ticket_id=uuid.uuid4(), status=LockStatus.QUEUED,
            lease_duration_seconds=lease_seconds, reason=(reason or "")[:500],
            holder_key=holder.key, holder_label=holder.label[:254],
            holder_user_id=holder.user_id, holder_token_id=holder.token_id,
            holder_operation_id=holder.operation_id, idempotency_key=idempotency_key,
        )  # fmt: skip
        if idempotency_key:
            try:
                with transaction.atomic():
                    ticket.save()
            except IntegrityError:  # the same key, just used on another resource
                return _same_target(_ticket_for_key(holder, idempotency_key), row)
        else:
            ticket.save()
        live.append(ticket)
        _settle(live, now)
        _announce(row, live)
        return ticket

    return _retrying(write)


def _ticket_for_key(holder: Holder, key: str) -> LockTicket | None:
    return (
        LockTicket.objects.select_related("resource_row", "lock_request")
        .filter(holder_key=holder.key, idempotency_key=key, lock_request__isnull=True)
        .first()
    )


def _same_target(earlier: LockTicket, row: LockResource) -> LockTicket:
    if earlier.resource_row_id != row.pk:
        raise Conflict(
            f"Idempotency key already used for a lock on {earlier.resource_row.resource}",
            details={"idempotencyKey": ["Used for another lock request."]},
        )
    return earlier


def lock_request_any(
    *,
    holder: Holder,
    repository: str,
    resources: list[str],
    lease_seconds: int,
    reason: str = "",
    idempotency_key: str = "",
) -> LockRequest:
    """Ask for any one of several resources: granted the first free one (in the order given),
    else queued on all of them and granted the first to free up."""
    _check_lease(lease_seconds)
    wanted = list(dict.fromkeys(resources))
    if not 1 <= len(wanted) <= MAX_SET_SIZE:
        raise InvalidRequest(
            f"Name 1 to {MAX_SET_SIZE} resources", details={"resources": ["1..50 names."]}
        )
    idempotency_key = (idempotency_key or "")[:200]

    def write() -> LockRequest:
        rows = _locked_rows(repository, wanted, create=True)  # in name order
        if idempotency_key:
            earlier = LockRequest.objects.filter(
                holder_key=holder.key, idempotency_key=idempotency_key
            ).first()
            if earlier is not None:
                if (earlier.repository, earlier.resources) != (repository, wanted):
                    raise Conflict(
                        "Idempotency key already used for another lock request",
                        details={"idempotencyKey": ["Used for another lock request."]},
                    )
                return earlier
        now = timezone.now()
        live_by_resource = {row.resource: _live(row) for row in rows}
        row_by_resource = {row.resource: row for row in rows}
        changed = {r for r, live in live_by_resource.items() if _settle(live, now)}
        request = LockRequest(
            request_id=uuid.uuid4(), repository=repository, resources=wanted,
            holder_key=holder.key, holder_label=holder.label[:254],
            idempotency_key=idempotency_key, lease_duration_seconds=lease_seconds,
            reason=(reason or "")[:500],
        )  # fmt: skip
        try:
            with transaction.atomic():
                request.save()
        except IntegrityError:  # the same key, in a request that just committed
            raise Conflict(
                "Idempotency key already used for another lock request",
                details={"idempotencyKey": ["Used for another lock request."]},
            ) from None
        free = next(
            (
                r
                for r in wanted
                if not any(t.status == LockStatus.ACQUIRED for t in live_by_resource[r])
            ),
            None,
        )
        for resource in [free] if free else wanted:
            ticket = LockTicket(
                resource_row=row_by_resource[resource], ticket_id=uuid.uuid4(),
                lock_request=request, status=LockStatus.QUEUED,
                lease_duration_seconds=lease_seconds, reason=request.reason,
                holder_key=holder.key, holder_label=request.holder_label,
                holder_user_id=holder.user_id, holder_token_id=holder.token_id,
                holder_operation_id=holder.operation_id,
            )  # fmt: skip
            ticket.save()
            live_by_resource[resource].append(ticket)
            _settle(live_by_resource[resource], now)
            changed.add(resource)
        for resource in sorted(changed):
            _announce(row_by_resource[resource], live_by_resource[resource])
        request.refresh_from_db(fields=["granted_ticket", "cancelled_at"])  # granted in _settle
        return request

    return _retrying(write)


# --- release, extend, cancel ------------------------------------------------------------------


def _may_act(principal: Principal | None, holder: Holder | None, holder_key: str) -> bool:
    if holder is not None:
        return holder.key == holder_key
    if principal is None:
        return False
    if is_privileged(principal):
        return True
    return Holder.of(principal).key == holder_key


def _refuse() -> Forbidden:
    return Forbidden(requires_role_message(["lock holder", *PRIVILEGED]))


def lock_release(
    *,
    repository: str,
    resource: str,
    ticket_id,
    principal: Principal | None = None,
    holder: Holder | None = None,
    released_by: str = "",
) -> LockTicket:
    """Release a held ticket (the next in line acquires) or cancel a queued one. A queued ticket
    of a request for any one of a set cancels the whole request."""

    def write() -> LockTicket:
        row = _locked_row(repository, resource, create=False)
        if row is None:
            raise NotFound("Lock not found")
        live = _live(row)
        ticket = next((t for t in live if str(t.ticket_id) == str(ticket_id)), None)
        if ticket is None:
            ended = lock_ticket_get(repository=repository, resource=resource, ticket_id=ticket_id)
            if not _may_act(principal, holder, ended.holder_key):
                raise _refuse()
            return ended  # already over: releasing again changes nothing
        if not _may_act(principal, holder, ticket.holder_key):
            raise _refuse()
        now = timezone.now()
        by = released_by or (holder.label if holder else Holder.of(principal).label)
        status = effective_status(ticket, now)
        if status == LockStatus.ACQUIRED:
            _end(ticket, LockStatus.RELEASED, by, now)
        elif status == LockStatus.QUEUED:
            _end(ticket, LockStatus.CANCELLED, by, now)
            if ticket.lock_request_id:
                _cancel_request_row(ticket.lock_request_id, now)
                others = [r for r in ticket.lock_request.resources if r != resource]
                _tidy_after_commit(repository, others)
        _settle(live, now)
        _announce(row, live)
        return ticket

    return _retrying(write)


def _cancel_request_row(request_pk: int, now: datetime) -> None:
    LockRequest.objects.select_for_update().filter(pk=request_pk, cancelled_at__isnull=True).update(
        cancelled_at=now
    )


def lock_extend(
    *,
    repository: str,
    resource: str,
    ticket_id,
    lease_seconds: int,
    principal: Principal | None = None,
    holder: Holder | None = None,
) -> LockTicket:
    """Give the holder `lease_seconds` more from now. Only a live lease can be extended: one that
    has lapsed is over (the next in line may hold the resource by now)."""
    _check_lease(lease_seconds)

    def write() -> LockTicket:
        row = _locked_row(repository, resource, create=False)
        ticket = lock_ticket_get(repository=repository, resource=resource, ticket_id=ticket_id)
        if not _may_act(principal, holder, ticket.holder_key):
            raise _refuse()
        live = _live(row)
        now = timezone.now()
        changed = _settle(live, now)
        current = next((t for t in live if t.pk == ticket.pk), None)
        if current is None or current.status != LockStatus.ACQUIRED:
            if changed:
                _announce(row, live)
            status = current.status if current else ticket.status
            raise Conflict(f"Lock ticket {ticket_id} is {status}, not acquired: nothing to extend")
        current.expires_at = now + timedelta(seconds=lease_seconds)
        current.lease_duration_seconds = lease_seconds
        current.save(update_fields=["expires_at", "lease_duration_seconds", "updated_at"])
        _announce(row, live)
        return current

    return _retrying(write)


def lock_request_cancel(
    *, request_id, principal: Principal | None = None, holder: Holder | None = None
) -> LockRequest:
    """End a request for any one of a set: release the resource it was granted, or stop waiting
    on all of them."""
    request = lock_request_get(request_id)
    if not _may_act(principal, holder, request.holder_key):
        raise _refuse()
    by = holder.label if holder else Holder.of(principal).label

    def write() -> None:
        rows = _locked_rows(request.repository, request.resources, create=False)
        locked = LockRequest.objects.select_for_update().get(pk=request.pk)
        now = timezone.now()
        if locked.cancelled_at is None:
            locked.cancelled_at = now
            locked.save(update_fields=["cancelled_at"])
        for row in rows:
            live = _live(row)
            mine = [t for t in live if t.lock_request_id == request.pk]
            for ticket in mine:
                ticket.lock_request = locked
                ended = LockStatus.RELEASED if ticket.status == LockStatus.ACQUIRED else None
                _end(ticket, ended or LockStatus.CANCELLED, by, now)
            if mine:
                _settle(live, now)
                _announce(row, live)

    _retrying(write)
    return lock_request_get(request_id)


def lock_force_release(*, actor: Principal, ticket: LockTicket, request=None) -> LockTicket:
    """An owner frees a stuck lock (or drops a queued ticket): the next in line acquires. For the
    console's lock board and the dashboard's; audited as `lock.force_released`."""
    from apps.accounts.audit import audit_event

    require_human_owner(actor)
    before = {"status": ticket.status, "holder": ticket.holder_label}
    released = lock_release(
        repository=ticket.resource_row.repository, resource=ticket.resource_row.resource,
        ticket_id=ticket.ticket_id, principal=actor,
        released_by=f"force-released by {actor.user.email}",
    )  # fmt: skip
    audit_event(
        "lock.force_released", principal=actor, request=request, target_type="lock",
        target_id=str(ticket.ticket_id), before=before,
    )  # fmt: skip
    return released


def locks_release_for_operation(operation_id: str) -> int:
    """Give up every ticket a task holds or waits with (the task ended or was cancelled)."""
    tickets = list(
        LockTicket.objects.select_related("resource_row").filter(
            holder_operation_id=operation_id, status__in=LIVE
        )
    )
    for ticket in tickets:
        lock_release(
            repository=ticket.resource_row.repository, resource=ticket.resource_row.resource,
            ticket_id=ticket.ticket_id, holder=Holder.task(operation_id),
            released_by="task cancelled",
        )  # fmt: skip
    return len(tickets)


# --- lapsed leases ----------------------------------------------------------------------------


def lock_settle_resource(*, repository: str, resource: str) -> bool:
    """Apply a lapsed lease on one resource and hand it on (a waiter's write when the holder's
    lease ran out). True when anything changed."""

    def write() -> bool:
        row = _locked_row(repository, resource, create=False)
        if row is None:
            return False
        live = _live(row)
        if _settle(live, timezone.now()):
            _announce(row, live)
            return True
        return False

    return _retrying(write)


def locks_expire_due() -> int:
    """The expiry pass: apply every lapsed lease and hand those locks on. Run once per interval
    for the cluster (the housekeeping tick); returns how many resources changed."""
    due = (
        LockTicket.objects.filter(status=LockStatus.ACQUIRED, expires_at__lte=timezone.now())
        .values_list("resource_row__repository", "resource_row__resource")
        .distinct()
    )
    return sum(
        lock_settle_resource(repository=repository, resource=resource)
        for repository, resource in list(due)
    )


# --- waiting ----------------------------------------------------------------------------------


def _raw_holder(ticket: LockTicket) -> LockTicket | None:
    return LockTicket.objects.filter(
        resource_row_id=ticket.resource_row_id, status=LockStatus.ACQUIRED
    ).first()


def lock_wait(*, ticket: LockTicket, seconds: float) -> LockTicket:
    """Block up to `seconds` until a queued ticket is acquired (or ends); woken by the hand-off
    signal, not by polling. When the holder's lease runs out meanwhile, the waiter applies it."""
    repository, resource = ticket.resource_row.repository, ticket.resource_row.resource
    deadline = time.monotonic() + seconds
    with handoff.subscription([ticket.ticket_id]) as wakeup:
        while True:
            ticket = lock_ticket_get(
                repository=repository, resource=resource, ticket_id=ticket.ticket_id
            )
            if effective_status(ticket) != LockStatus.QUEUED:
                return ticket
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return ticket
            holder = _raw_holder(ticket)
            if holder is not None and holder.expires_at:
                until_lapse = (holder.expires_at - timezone.now()).total_seconds()
                if until_lapse <= 0:
                    lock_settle_resource(repository=repository, resource=resource)
                    continue
                remaining = min(remaining, until_lapse + 0.01)
            wakeup.wait(remaining)


def lock_request_wait(*, request: LockRequest, seconds: float) -> LockRequest:
    """Block up to `seconds` until a request for any one of a set is granted (or cancelled)."""
    deadline = time.monotonic() + seconds
    with handoff.subscription([request.request_id]) as wakeup:
        while True:
            request = lock_request_get(request.request_id)
            if request.granted_ticket_id or request.cancelled_at:
                return request
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return request
            lapsed = list(
                LockTicket.objects.filter(
                    resource_row__repository=request.repository,
                    resource_row__resource__in=request.resources,
                    status=LockStatus.ACQUIRED,
                ).values_list("resource_row__resource", "expires_at")
            )
            now = timezone.now()
            due = [r for r, expires in lapsed if expires and expires <= now]
            for resource in due:
                lock_settle_resource(repository=request.repository, resource=resource)
            if due:
                continue
            soonest = min((e for _, e in lapsed if e), default=None)
            if soonest is not None:
                remaining = min(remaining, (soonest - now).total_seconds() + 0.01)
            wakeup.wait(remaining)
