"""The repository routes: the GitHub webhook receiver (signature-authenticated, no bearer), the
deliveries listing, and the CI repository token. Each view declares its roles (`allowed_roles`);
services do the verification, the writes and the auditing."""

import structlog
from django.conf import settings
from django.db import DatabaseError
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.roles import PRIVILEGED
from apps.builds import repository_tokens, selectors, services
from apps.builds.models import DeliveryStatus
from apps.core.errors import error_response
from apps.core.exceptions import InvalidRequest
from apps.core.parsers import RequestTooLarge
from apps.core.permissions import PUBLIC

log = structlog.get_logger(__name__)

OWNER_APPLICATION = PRIVILEGED
DELIVERY_LIST_LIMIT = 200

# Refusals carry the one error shape; apps.core.openapi attaches its schema.
_error = OpenApiResponse(description="Refused (the error shape)")
_accepted = inline_serializer(
    "WebhookAccepted",
    {
        "deliveryId": serializers.CharField(),
        "status": serializers.ChoiceField(choices=["accepted", "rejected", "duplicate"]),
        "reason": serializers.CharField(),
        "taskId": serializers.CharField(allow_null=True),
    },
)


def _raw_body(request: Request) -> bytes:
    """The exact bytes GitHub signed, bounded like every JSON body of the API."""
    limit = settings.SFP_API_MAX_JSON_BYTES
    declared = request.META.get("CONTENT_LENGTH", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(f"Request body larger than {limit} bytes")
    body = request._request.read(limit + 1)
    if len(body) > limit:
        raise RequestTooLarge(f"Request body larger than {limit} bytes")
    return body


class GitHubWebhookView(APIView):
    """Authenticated by its HMAC signature, not a bearer token: hence no authentication class."""

    authentication_classes: list = []
    allowed_roles = PUBLIC
    parser_classes: list = []

    @extend_schema(
        summary="Receive GitHub webhook events (validates signature; async processing)",
        tags=["Repository"],
        request=None,
        parameters=[
            OpenApiParameter("X-GitHub-Event", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("X-GitHub-Delivery", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("X-Hub-Signature-256", str, OpenApiParameter.HEADER, required=True),
        ],
        responses={
            202: _accepted,
            200: _accepted,
            400: _error,
            401: _error,
            413: _error,
            503: _error,
        },
        description="202 once the delivery is stored and its work enqueued (one transaction); "
        "200 for a redelivery of a delivery id already stored (nothing started); 401 for a "
        "forged, missing or stale signature (nothing written); 503 when the database failed "
        "(nothing written either).",
    )
    def post(self, request: Request) -> Response:
        try:
            delivery = services.github_delivery_receive(
                body=_raw_body(request),
                signature=request.headers.get("X-Hub-Signature-256"),
                event=request.headers.get("X-GitHub-Event"),
                delivery_id=request.headers.get("X-GitHub-Delivery"),
            )
        except DatabaseError:
            # Nothing was kept (one transaction); a non-2xx lets GitHub offer the redelivery.
            log.exception("webhook.store_failed", provider="github")
            return error_response(503, "The delivery could not be stored; redeliver it")
        if delivery.is_duplicate:
            return Response(
                {
                    "deliveryId": delivery.delivery_id,
                    "status": "duplicate",
                    "reason": "already received; nothing started",
                    "taskId": delivery.task_operation_id or None,
                },
                status=200,
            )
        return Response(
            {
                "deliveryId": delivery.delivery_id,
                "status": delivery.status,
                "reason": delivery.reason,
                "taskId": delivery.task_operation_id or None,
            },
            status=202,
        )


class AzureDevOpsWebhookView(APIView):
    """Authenticated by the service hook's basic-auth password (the project's webhook secret)."""

    authentication_classes: list = []
    allowed_roles = PUBLIC
    parser_classes: list = []

    @extend_schema(
        summary="Receive Azure DevOps service hook notifications",
        tags=["Repository"],
        request=None,
        parameters=[
            OpenApiParameter("repositoryIdentifier", str, required=True),
            OpenApiParameter("Authorization", str, OpenApiParameter.HEADER, required=True),
        ],
        responses={200: _accepted, 400: _error, 401: _error, 413: _error, 503: _error},
        description="200 for every stored or duplicate notification (Azure DevOps puts a hook "
        "on probation after failures); 401 for a wrong or missing secret (nothing written).",
    )
    def post(self, request: Request) -> Response:
        try:
            delivery = services.azure_delivery_receive(
                body=_raw_body(request),
                authorization=request.headers.get("Authorization"),
                repository=request.query_params.get("repositoryIdentifier"),
            )
        except DatabaseError:
            log.exception("webhook.store_failed", provider="azure-devops")
            return error_response(503, "The notification could not be stored; it will be resent")
        return Response(
            {
                "deliveryId": delivery.delivery_id,
                "status": "duplicate" if delivery.is_duplicate else delivery.status,
                "reason": "already received; nothing started"
                if delivery.is_duplicate
                else delivery.reason,
                "taskId": delivery.task_operation_id or None,
            },
            status=200,
        )


class WebhookDeliveriesView(APIView):
    allowed_roles = OWNER_APPLICATION

    @extend_schema(
        summary="List received webhook deliveries, newest first (not in the published spec)",
        tags=["Repository"],
        parameters=[
            OpenApiParameter("repositoryIdentifier", str, required=False),
            OpenApiParameter("status", str, enum=DeliveryStatus.values, required=False),
            OpenApiParameter("limit", int, required=False, description="1-200, default 50"),
        ],
        responses={
            200: inline_serializer("WebhookDeliveries", {"deliveries": serializers.ListField()}),
            400: _error,
        },
    )
    def get(self, request: Request) -> Response:
        status = request.query_params.get("status")
        if status and status not in DeliveryStatus.values:
            raise InvalidRequest(f"status must be one of {', '.join(DeliveryStatus.values)}")
        limit = request.query_params.get("limit", "50")
        if not limit.isdigit() or not 1 <= int(limit) <= DELIVERY_LIST_LIMIT:
            raise InvalidRequest(f"limit must be 1..{DELIVERY_LIST_LIMIT}")
        deliveries = selectors.deliveries_list(
            repository=request.query_params.get("repositoryIdentifier"), status=status
        )[: int(limit)]
        return Response({"deliveries": [selectors.delivery_dto(d) for d in deliveries]})


class RepositoryAuthTokenView(APIView):
    allowed_roles = OWNER_APPLICATION

    @extend_schema(
        summary="Get a short-lived GitHub installation token for a registered repository",
        tags=["Repository"],
        parameters=[
            OpenApiParameter(
                "repositoryIdentifier", str, required=True, description="owner/repo (URL-encoded)"
            )
        ],
        responses={
            200: inline_serializer(
                "RepositoryAuthToken",
                {
                    "token": serializers.CharField(),
                    "expiresAt": serializers.DateTimeField(allow_null=True),
                    "type": serializers.ChoiceField(choices=["installation", "pat"]),
                    "provider": serializers.CharField(),
                    "scope": serializers.CharField(),
                },
            ),
            400: _error,
            401: _error,
            403: _error,
            404: _error,
            429: _error,
            502: _error,
        },
    )
    def get(self, request: Request) -> Response:
        repository = request.query_params.get("repositoryIdentifier")
        if not repository:
            raise InvalidRequest("repositoryIdentifier is required")
        try:
            body = repository_tokens.repository_token_issue(
                actor=request.auth, repository=repository, request=request._request
            )
        except repository_tokens.UpstreamRateLimited as error:
            response = error_response(429, error.message)
            if error.retry_after:
                response["Retry-After"] = str(error.retry_after)
            return response
        response = Response(body)
        response["Cache-Control"] = "no-store"
        return response
