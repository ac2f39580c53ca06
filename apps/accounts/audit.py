"""Writing the append-only audit log: one row per authenticated request, plus domain events.

Domain events (token created, role changed, login failed, …) are written by services inside
their own transaction, with before/after values, so the row exists exactly when the change does.
Later capabilities record credential reads through `audit_event` as well. Request rows, written
on every authenticated request, go in through one prepared INSERT rather than a model save: the
same row, committed before the response leaves, without the ORM's per-save work.
"""

from typing import Any

from django.db import connection
from django.http import HttpRequest
from django.utils import timezone

from apps.accounts.models import AuditEvent
from apps.accounts.principal import Principal
from apps.core.request_context import client_ip, user_agent


def _actor_fields(principal: Principal | None) -> dict[str, Any]:
    if principal is None:
        return {}
    return {
        "actor_user_id": principal.user.pk,
        "actor_email": principal.user.email,
        "actor_token_id": principal.token.pk if principal.token else "",
        "actor_role": principal.primary_role,
    }


def _request_fields(request: HttpRequest | None) -> dict[str, Any]:
    if request is None:
        return {}
    return {
        "method": request.method or "",
        "path": request.path[:512],
        "client_ip": client_ip(request),
        "user_agent": user_agent(request),
        "request_id": getattr(request, "request_id", ""),
    }


def audit_event(
    action: str,
    *,
    principal: Principal | None = None,
    request: HttpRequest | None = None,
    target_type: str = "",
    target_id: str = "",
    before: dict | None = None,
    after: dict | None = None,
    **fields: Any,
) -> AuditEvent:
    """Record a domain event. Never put a secret in `before`/`after`."""
    return AuditEvent.objects.create(
        action=action,
        target_type=target_type,
        target_id=str(target_id)[:254],
        before=before,
        after=after,
        **_actor_fields(principal),
        **_request_fields(request),
        **fields,
    )


_REQUEST_COLUMNS = (
    "occurred_at action operation status_code duration_ms actor_user_id actor_email "
    "actor_token_id actor_role method path client_ip user_agent request_id target_type target_id"
).split()
# Built once from constants (the table name and the column list above), never from input.
_INSERT_REQUEST_ROW = (
    f"INSERT INTO {AuditEvent._meta.db_table} ({', '.join(_REQUEST_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join(['%s'] * len(_REQUEST_COLUMNS))})"
)


def audit_request(
    request: HttpRequest, principal: Principal, *, status_code: int, duration_ms: float
) -> None:
    """Record one authenticated request (autocommit: durable when this returns)."""
    match = getattr(request, "resolver_match", None)
    operation = (match.view_name or match._func_path) if match else ""
    row = {
        "occurred_at": timezone.now(),
        "action": AuditEvent.REQUEST,
        "operation": operation[:128],
        "status_code": status_code,
        "duration_ms": round(duration_ms, 2),
        "target_type": "",
        "target_id": "",
        **_actor_fields(principal),
        **_request_fields(request),
    }
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_REQUEST_ROW, [row[column] for column in _REQUEST_COLUMNS])
