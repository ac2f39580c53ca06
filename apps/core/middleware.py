"""Request-wide middleware: request id + structured access log, and the API's error body.

`RequestContextMiddleware` gives every request an id (an incoming `X-Request-ID` is kept when it
looks sane), binds it to the structlog context so every log line of the request carries it,
returns it in the `X-Request-ID` header and writes one access-log line with method, path (never
the query string, which may carry secrets), status, duration and actor.

`MalformedRequestMiddleware` refuses, with 400, a path or query string holding a NUL byte before
any view, audit row or query sees it: PostgreSQL cannot store or compare one, so it could only
end as a database error.

`ApiErrorMiddleware` makes sure nothing on `/sfp/*` or `/health` answers with an HTML page or a
traceback: any 4xx/5xx that is not already in the error shape is rewritten into it, and an
unhandled exception is logged and answered with a bare 500.
"""

import re
import time
import uuid

import structlog
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django_prometheus.middleware import PrometheusAfterMiddleware

from apps.core.errors import ENVELOPE_ATTRIBUTE, error_response, status_phrase

logger = structlog.get_logger("sfpserver.request")

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Headers that carry meaning for the client and survive the rewrite into the error shape.
_KEPT_HEADERS = ("Allow", "WWW-Authenticate", "Retry-After", REQUEST_ID_HEADER)


def describe_actor(request: HttpRequest) -> str:
    """Who made the request, for logs: set by authentication as `request.actor_label`."""
    label = getattr(request, "actor_label", None)
    if label:
        return label
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return "anonymous"


class RequestContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)

        started = time.perf_counter()
        response = self.get_response(request)
        duration_ms = round((time.perf_counter() - started) * 1000, 2)

        response[REQUEST_ID_HEADER] = request_id
        logger.info(
            "request",
            method=request.method,
            path=request.path,
            status=response.status_code,
            duration_ms=duration_ms,
            actor=describe_actor(request),
        )
        return response


def is_api_path(path: str) -> bool:
    return path == "/sfp" or path.startswith("/sfp/") or path == "/health"


class MalformedRequestMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path or "%00" in query or "\x00" in query:
            message = "NUL bytes are not allowed in a path or query string"
            if is_api_path(request.path.replace("\x00", "")):
                return error_response(400, message)
            return HttpResponseBadRequest(message, content_type="text/plain")
        return self.get_response(request)


class ApiErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and is_api_path(request.path)
            and not getattr(response, ENVELOPE_ATTRIBUTE, False)
        ):
            return self._rewrite(request, response)
        return response

    def _rewrite(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        status_code = response.status_code
        if status_code == 404:
            message = f"Cannot {request.method} {request.path}"
        elif status_code == 405:
            message = f"Method {request.method} is not allowed on {request.path}"
        else:
            message = status_phrase(status_code)
        replacement = error_response(status_code, message)
        for header in _KEPT_HEADERS:
            if header in response:
                replacement[header] = response[header]
        return replacement

    def process_exception(self, request: HttpRequest, exception: Exception):
        if not is_api_path(request.path):
            return None
        if isinstance(exception, Http404):
            return error_response(404, f"Cannot {request.method} {request.path}")
        if isinstance(exception, PermissionDenied):
            return error_response(403, "Forbidden")
        if isinstance(exception, SuspiciousOperation):
            return error_response(400, "Bad request")
        logger.exception("unhandled_exception", method=request.method, path=request.path)
        return error_response(500, "Internal server error")


class SyncPrometheusAfterMiddleware(PrometheusAfterMiddleware):
    """django-prometheus' closing middleware, declared sync-only on purpose.

    Under ASGI, Django runs an async-capable `MiddlewareMixin` with a thread hop for each of its
    `process_request`/`process_response` calls. With a sync-only middleware innermost, the whole
    chain and the (sync) view run in one thread after a single hop (see docs/benchmarks.md).
    """

    async_capable = False
