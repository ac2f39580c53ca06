"""Leaves one audit row for every authenticated request (API bearer callers and console users)."""

import time

import structlog

from apps.accounts.audit import audit_request
from apps.accounts.principal import principal_for_user

logger = structlog.get_logger(__name__)


class AuditMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        principal = getattr(request, "sfp_principal", None)
        if principal is None:
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                principal = principal_for_user(user)
                request.actor_label = principal.label
        if principal is not None:
            duration_ms = (time.perf_counter() - started) * 1000
            try:
                audit_request(
                    request, principal, status_code=response.status_code, duration_ms=duration_ms
                )
            except Exception:
                logger.exception("audit_write_failed", path=request.path)
        return response
