"""Health, ping and the API root, public as the published API has them."""

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import ENVELOPE_ATTRIBUTE, error_body
from apps.core.health import run_health_checks
from apps.core.permissions import PUBLIC
from apps.core.renderers import PlainTextRenderer


class HealthCheckResultSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["up", "down"])
    latencyMs = serializers.FloatField(required=False)
    reason = serializers.CharField(required=False)


_health_ok = inline_serializer(
    "HealthStatus",
    fields={
        "status": serializers.ChoiceField(choices=["ok", "degraded"]),
        "mode": serializers.CharField(),
        "checks": serializers.DictField(child=HealthCheckResultSerializer()),
        "degraded": serializers.ListField(child=serializers.CharField(), required=False),
        "workers": serializers.DictField(required=False),
    },
)
_health_down = inline_serializer(
    "HealthFailure",
    fields={
        "statusCode": serializers.IntegerField(),
        "message": serializers.CharField(),
        "error": serializers.CharField(),
        "status": serializers.ChoiceField(choices=["error"]),
        "checks": serializers.DictField(child=HealthCheckResultSerializer()),
    },
)
_HEALTH_RESPONSES = {
    200: OpenApiResponse(_health_ok, "All critical systems are healthy"),
    503: OpenApiResponse(_health_down, "One or more critical systems are unhealthy"),
}


class HealthView(APIView):
    """Database, channel layer and task backend: 200 when the critical ones answer ("degraded"
    when the channel layer does not), else 503 naming the failed; plus the workers' summary."""

    authentication_classes: list = []
    allowed_roles = PUBLIC
    renderer_classes = [JSONRenderer]

    @extend_schema(
        operation_id="AppController_getHealth",
        summary="Get comprehensive health check status",
        tags=["Health"],
        auth=[],
        responses=_HEALTH_RESPONSES,
    )
    def get(self, request: Request) -> Response:
        report = run_health_checks()
        if report.healthy:
            body = {"status": "ok", "mode": settings.SFP_MODE, "checks": report.checks}
            if report.degraded:  # still serving: only a non-critical part is down
                body |= {"status": "degraded", "degraded": report.degraded}
            return Response(body | report.summaries)
        body = error_body(
            503, "Unhealthy: " + ", ".join(report.failed), status="error", checks=report.checks
        )
        response = Response(body, status=503)
        setattr(response, ENVELOPE_ATTRIBUTE, True)
        return response


class DirectHealthView(HealthView):
    """The same health report at `/health`, outside the API prefix."""

    @extend_schema(
        operation_id="AppController_getHealthDirect",
        summary="Health check endpoint accessible at /health (bypasses global prefix)",
        tags=["Health"],
        auth=[],
        responses=_HEALTH_RESPONSES,
    )
    def get(self, request: Request) -> Response:
        return super().get(request)


class PingView(APIView):
    """An echo test: always `pong`."""

    authentication_classes: list = []
    allowed_roles = PUBLIC
    renderer_classes = [PlainTextRenderer]

    @extend_schema(
        operation_id="AppController_ping",
        summary="Get an echo test",
        tags=["Health"],
        auth=[],
        responses={(200, "text/plain"): OpenApiResponse(str, "pong")},
    )
    def get(self, request: Request) -> Response:
        return Response("pong", content_type="text/plain")


class OpenApiDocumentView(SpectacularJSONAPIView):
    """The OpenAPI document, public as the published server serves it."""

    authentication_classes: list = []
    allowed_roles = PUBLIC


class ApiDocsView(SpectacularSwaggerView):
    """Browsable API documentation (Swagger UI served from this server, not a CDN)."""

    authentication_classes: list = []
    allowed_roles = PUBLIC
    # A page, not an API: DRF's OPTIONS metadata cannot render through its HTML template.
    http_method_names = ["get", "head"]
