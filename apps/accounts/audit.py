"""Writing the append-only audit log: one row per authenticated request, plus domain events.

Domain events (token created, role changed, login failed, …) are written by services inside
their own transaction, with before/after values, so the row exists exactly when the change does.
Later capabilities record credential reads through `audit_event` as well.
"""

from typing import Any

from django.http import HttpRequest

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


def audit_request(
    request: HttpRequest, principal: Principal, *, status_code: int, duration_ms: float
) -> AuditEvent:
    match = getattr(request, "resolver_match", None)
    operation = (match.view_name or match._func_path) if match else ""
    return AuditEvent.objects.create(
        action=AuditEvent.REQUEST,
        operation=operation[:128],
        status_code=status_code,
        duration_ms=round(duration_ms, 2),
        **_actor_fields(principal),
        **_request_fields(request),
    )
