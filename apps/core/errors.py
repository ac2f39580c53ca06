"""The one error body of the API: `{"statusCode", "message", "error"}` (+ `details` for validation).

This is the shape NestJS answers with, which the sfp CLI and the flxbl GitHub Actions parse. DRF
exceptions are turned into it by `api_exception_handler`; everything else that fails on `/sfp/*`
(unknown routes, Django's own 4xx, unhandled exceptions) is rewritten by
`apps.core.middleware.ApiErrorMiddleware` through `error_response`.
"""

from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf_exceptions

from apps.core.exceptions import ServiceError

# Marks a response whose body already has the error shape, so the middleware leaves it alone.
ENVELOPE_ATTRIBUTE = "sfp_error_envelope"


def status_phrase(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"


def error_body(status_code: int, message: str, **extra: Any) -> dict[str, Any]:
    return {"statusCode": status_code, "message": message, "error": status_phrase(status_code)} | (
        extra
    )


def error_response(status_code: int, message: str, **extra: Any) -> JsonResponse:
    response = JsonResponse(error_body(status_code, message, **extra), status=status_code)
    setattr(response, ENVELOPE_ATTRIBUTE, True)
    return response


def _flatten_details(detail: Any, prefix: str = "") -> list[str]:
    """Readable `field: problem` lines from DRF's nested validation detail."""
    if isinstance(detail, dict):
        lines = []
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            lines += _flatten_details(
                value, f"{prefix}.{name}" if prefix and name else prefix or name
            )
        return lines
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return [f"{prefix}: {item}" if prefix else str(item) for item in detail]
        lines = []
        for index, item in enumerate(detail):
            lines += _flatten_details(item, f"{prefix}[{index}]")
        return lines
    return [f"{prefix}: {detail}" if prefix else str(detail)]


def api_exception_handler(exc: Exception, context: dict) -> JsonResponse | None:
    """DRF's exception handler, answering in the error shape.

    Returns None for exceptions DRF does not know, so they reach the middleware, which logs them
    and answers 500 without leaking anything.
    """
    if isinstance(exc, ServiceError):
        extra = {"details": exc.details} if exc.details else {}
        return error_response(exc.status_code, exc.message, **extra)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    if not isinstance(exc, drf_exceptions.APIException):
        return None

    # A plain JsonResponse, not a DRF Response: errors are JSON even on views that render text.
    status_code = exc.status_code
    if isinstance(exc, drf_exceptions.ValidationError):
        lines = _flatten_details(exc.detail)
        message = "; ".join(lines) if lines else "Invalid request"
        response = error_response(status_code, message, details=exc.detail)
    else:
        response = error_response(status_code, str(exc.detail))

    if getattr(exc, "auth_header", None):
        response["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        response["Retry-After"] = str(int(exc.wait))
    return response
