"""The `/metrics` endpoint: django-prometheus' exporter, behind a bearer token when one is set.

Apps add collectors read at scrape time (e.g. from database rows written by other processes)
with `register_scrape_collector`; they are exported once, beside the per-process (or, under
gunicorn, summed multi-process) metrics, never summed across processes themselves.
"""

import hmac

import prometheus_client
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django_prometheus.exports import ExportToDjangoView

_scrape_registry = prometheus_client.CollectorRegistry(auto_describe=False)
_scrape_collectors: list = []


def register_scrape_collector(collector) -> None:
    """Export `collector` on /metrics (once per process, however often it is registered)."""
    if type(collector) not in {type(known) for known in _scrape_collectors}:
        _scrape_collectors.append(collector)
        _scrape_registry.register(collector)


def metrics_view(request: HttpRequest) -> HttpResponse:
    expected = settings.SFP_METRICS_TOKEN
    if expected:
        supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(supplied.encode(), expected.encode()):
            response = HttpResponse(
                "metrics token required\n", status=401, content_type="text/plain"
            )
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    response = ExportToDjangoView(request)
    if _scrape_collectors:
        response.content = response.content + prometheus_client.generate_latest(_scrape_registry)
    return response
