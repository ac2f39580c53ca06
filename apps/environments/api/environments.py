"""Environments per repository on the published `/sfp/api/environments` paths: create, read,
update, delete, orchestration order, lock (one, or any free one of a set: ours) and unlock, and
credentials for the lock holder."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.roles import ANY_ROLE, OWNER, PRIVILEGED, is_privileged
from apps.core.exceptions import InvalidRequest
from apps.core.validation import validated
from apps.environments.api.locks import _lock, idempotency_key
from apps.environments.api.orgs import _flag
from apps.environments.models import Category
from apps.environments.selectors import environments as environment_reads
from apps.environments.selectors import locks as lock_reads
from apps.environments.services import environments, locks


class EnvironmentFieldsSerializer(serializers.Serializer):
    description = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    category = serializers.ChoiceField(choices=Category.choices, required=False)
    salesforceUsername = serializers.CharField(required=False, allow_null=True, max_length=254)
    devHubUsername = serializers.CharField(required=False, allow_blank=True, max_length=254)
    branch = serializers.CharField(required=False, allow_blank=True, max_length=255)
    tags = serializers.ListField(child=serializers.CharField(max_length=64), required=False)
    metadata = serializers.DictField(required=False)
    isActive = serializers.BooleanField(required=False)
    isDefault = serializers.BooleanField(required=False)
    orchestrationOrder = serializers.IntegerField(required=False)


class CreateEnvironmentSerializer(EnvironmentFieldsSerializer):
    repositoryIdentifier = serializers.CharField(max_length=255)
    name = serializers.RegexField(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,119}$")
    category = serializers.ChoiceField(choices=Category.choices)


class LockEnvironmentSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
    durationMinutes = serializers.IntegerField(min_value=1, max_value=24 * 60, default=30)
    wait = serializers.BooleanField(default=False)
    waitTimeoutSeconds = serializers.IntegerField(
        min_value=0, max_value=environments.MAX_WAIT_SECONDS, default=30
    )
    authType = serializers.ChoiceField(
        choices=["accessToken", "sfdxAuthUrl", "none"], default="accessToken"
    )
    idempotencyKey = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default="",
        help_text="A retry with the same key (from the same caller) gets the same ticket.",
    )  # fmt: skip


class LockAnyEnvironmentSerializer(LockEnvironmentSerializer):
    repositoryIdentifier = serializers.CharField(max_length=255)
    category = serializers.ChoiceField(choices=Category.choices, required=False)
    names = serializers.ListField(
        child=serializers.CharField(max_length=120), required=False, min_length=1,
        max_length=locks.MAX_SET_SIZE,
    )  # fmt: skip

    def validate(self, attrs):
        if "category" not in attrs and "names" not in attrs:
            raise serializers.ValidationError({"names": ["Send names or a category."]})
        return attrs


class UnlockEnvironmentSerializer(serializers.Serializer):
    ticketId = serializers.UUIDField()


def environment_dto(environment, status: dict | None = None) -> dict:
    """An environment as the API shows it; `status` when its lock status was read in bulk."""
    status = status or environment_reads.environment_lock_state(environment)
    current = status["currentLock"] or {}
    return {
        "id": str(environment.pk),
        "repositoryIdentifier": environment.project.identifier,
        "repositoryName": environment.project.identifier.rsplit("/", 1)[-1],
        "name": environment.name,
        "description": environment.description,
        "category": environment.category,
        "salesforceUsername": environment.org.username if environment.org else None,
        "devHubUsername": environment.devhub_username or None,
        "isActive": environment.is_active,
        "isDefault": environment.is_default,
        "isLocked": status["isLocked"],
        "lockedBy": current.get("lockedBy"),
        "lockExpiresAt": current.get("expiresAt"),
        "lockExpiresInSeconds": current.get("expiresInSeconds"),
        "lockStatus": status,
        "metadata": environment.metadata,
        "tags": environment.tags,
        "branch": environment.branch,
        "orchestrationOrder": environment.orchestration_order,
        "createdAt": environment.created_at.isoformat(),
        "updatedAt": environment.updated_at.isoformat(),
    }


_environment = inline_serializer(
    "Environment",
    {
        "id": serializers.UUIDField(),
        "repositoryIdentifier": serializers.CharField(),
        "repositoryName": serializers.CharField(),
        "name": serializers.CharField(),
        "description": serializers.CharField(),
        "category": serializers.ChoiceField(choices=Category.choices),
        "salesforceUsername": serializers.CharField(allow_null=True),
        "devHubUsername": serializers.CharField(allow_null=True),
        "isActive": serializers.BooleanField(),
        "isDefault": serializers.BooleanField(),
        "isLocked": serializers.BooleanField(),
        "lockedBy": serializers.CharField(allow_null=True),
        "lockExpiresAt": serializers.DateTimeField(allow_null=True),
        "lockExpiresInSeconds": serializers.IntegerField(allow_null=True),
        "lockStatus": serializers.DictField(),
        "metadata": serializers.JSONField(),
        "tags": serializers.ListField(child=serializers.CharField()),
        "branch": serializers.CharField(),
        "orchestrationOrder": serializers.IntegerField(),
        "createdAt": serializers.DateTimeField(),
        "updatedAt": serializers.DateTimeField(),
    },
)
# Without `category` the list is grouped: one key per category, each a list (as published).
_environments_grouped = inline_serializer(
    "EnvironmentsByCategory",
    {category: _environment.__class__(many=True) for category in Category.values},
)
_environments_list = OpenApiResponse(
    response=PolymorphicProxySerializer(
        component_name="EnvironmentList",
        serializers=[_environment.__class__(many=True), _environments_grouped],
        resource_type_field_name=None,
        many=False,
    ),
    description="A list when `category` is given, else grouped by category.",
)


class EnvironmentsView(APIView):
    allowed_roles = {"GET": ANY_ROLE, "POST": OWNER}

    @extend_schema(
        operation_id="EnvironmentsController_findAll",
        summary="Get all environments (grouped by category unless a category is given)",
        tags=["Environments"],
        parameters=[
            OpenApiParameter("repositoryIdentifier", str),
            OpenApiParameter("category", str, enum=Category.values),
            OpenApiParameter("isActive", bool),
            OpenApiParameter("branch", str),
            OpenApiParameter("tags", str, many=True, description="All must match"),
        ],
        responses={200: _environments_list},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        category = params.get("category")
        rows = environment_reads.environments_filtered(
            repository=params.get("repositoryIdentifier"),
            category=category,
            is_active=_flag(params, "isActive"),
            branch=params.get("branch"),
            tags=[t for value in params.getlist("tags") for t in value.split(",") if t],
        )
        states = environment_reads.environment_lock_states(rows)
        if category:
            return Response([environment_dto(e, states[e.pk]) for e in rows])
        grouped = {c: [] for c in Category.values}
        for environment in rows:
            grouped[environment.category].append(
                environment_dto(environment, states[environment.pk])
            )
        return Response(grouped)

    @extend_schema(
        operation_id="EnvironmentsController_create",
        summary="Create an environment (repository + org + category)",
        tags=["Environments"],
        request=CreateEnvironmentSerializer,
        responses={201: _environment},
    )
    def post(self, request: Request) -> Response:
        from apps.projects.selectors import project_get

        data = validated(CreateEnvironmentSerializer, request.data)
        environment = environments.environment_create(
            actor=request.auth, project=project_get(data["repositoryIdentifier"]), fields=data,
            request=request._request,
        )  # fmt: skip
        return Response(environment_dto(environment), status=201)


class OrchestrationOrderView(APIView):
    allowed_roles = {"GET": ANY_ROLE}

    @extend_schema(
        operation_id="EnvironmentsController_getOrchestrationOrder",
        summary="Environment names of a repository's category in orchestration order",
        tags=["Environments"],
        parameters=[
            OpenApiParameter("repositoryIdentifier", str, required=True),
            OpenApiParameter("category", str, enum=Category.values, required=True),
            OpenApiParameter("includeInactive", bool),
        ],
        responses={200: {"type": "array", "items": {"type": "string"}}},
    )
    def get(self, request: Request) -> Response:
        from apps.projects.selectors import project_get

        params = request.query_params
        category = params.get("category")
        if category not in Category.values or not params.get("repositoryIdentifier"):
            raise InvalidRequest(
                "repositoryIdentifier and category are required",
                details={"category": Category.values},
            )
        names = environment_reads.orchestration_order(
            project=project_get(params["repositoryIdentifier"]), category=category,
            include_inactive=bool(_flag(params, "includeInactive")),
        )  # fmt: skip
        return Response(names)


class EnvironmentView(APIView):
    allowed_roles = {"GET": ANY_ROLE, "PUT": OWNER, "DELETE": OWNER}

    @extend_schema(
        operation_id="EnvironmentsController_findOne",
        summary="Get an environment with its lock status",
        tags=["Environments"],
        responses={200: _environment},
    )
    def get(self, request: Request, environment_id) -> Response:
        return Response(environment_dto(environment_reads.environment_get(environment_id)))

    @extend_schema(
        operation_id="EnvironmentsController_update",
        summary="Update an environment",
        tags=["Environments"],
        request=EnvironmentFieldsSerializer,
        responses={200: _environment},
    )
    def put(self, request: Request, environment_id) -> Response:
        environment = environment_reads.environment_get(environment_id)
        data = validated(EnvironmentFieldsSerializer, request.data)
        environments.environment_update(
            actor=request.auth, environment=environment, fields=data, request=request._request
        )
        return Response(environment_dto(environment_reads.environment_get(environment_id)))

    @extend_schema(
        operation_id="EnvironmentsController_remove",
        summary="Delete an environment (the org is untouched)",
        tags=["Environments"],
        responses={
            200: inline_serializer("DeleteEnvironment", {"success": serializers.BooleanField()})
        },
    )
    def delete(self, request: Request, environment_id) -> Response:
        environment = environment_reads.environment_get(environment_id)
        environments.environment_delete(
            actor=request.auth, environment=environment, request=request._request
        )
        return Response({"success": True})


class EnvironmentMetadataView(APIView):
    allowed_roles = {"PATCH": PRIVILEGED}

    @extend_schema(
        operation_id="EnvironmentsController_patchMetadata",
        summary="Merge keys into an environment's metadata (null removes a key)",
        tags=["Environments"],
        request=OpenApiTypes.OBJECT,
        responses={200: _environment},
    )
    def patch(self, request: Request, environment_id) -> Response:
        environment = environment_reads.environment_get(environment_id)
        if not isinstance(request.data, dict) or not request.data:
            raise InvalidRequest("Send an object of metadata keys to set (null removes a key)")
        environments.environment_patch_metadata(
            actor=request.auth,
            environment=environment,
            changes=dict(request.data),
            request=request._request,
        )
        return Response(environment_dto(environment_reads.environment_get(environment_id)))


_environment_lock = inline_serializer(
    "EnvironmentLock",
    {
        "ticketId": serializers.UUIDField(),
        "status": serializers.CharField(),
        "environmentId": serializers.UUIDField(),
        "environmentName": serializers.CharField(),
        "duration": serializers.IntegerField(help_text="Minutes"),
        "queuePosition": serializers.IntegerField(),
        "expiresAt": serializers.DateTimeField(allow_null=True),
        "salesforceUsername": serializers.CharField(allow_null=True),
        "accessToken": serializers.CharField(required=False),
        "instanceUrl": serializers.CharField(required=False),
    },
)


def _lock_body(request: Request, environment, ticket, data: dict) -> dict:
    """The published lock response; credentials only to owners and application tokens, and only
    once the ticket holds the lock."""
    body = {
        "ticketId": str(ticket.ticket_id), "status": lock_reads.effective_status(ticket),
        "environmentId": str(environment.pk), "environmentName": environment.name,
        "duration": data["durationMinutes"], "queuePosition": lock_reads.queue_position(ticket),
        "expiresAt": ticket.expires_at.isoformat() if ticket.expires_at else None,
        "salesforceUsername": environment.org.username if environment.org else None,
    }  # fmt: skip
    if body["status"] == "acquired" and data["authType"] != "none" and is_privileged(request.auth):
        body |= environments.environment_credentials(
            actor=request.auth, environment=environment, ticket_id=ticket.ticket_id,
            auth_type=data["authType"], request=request._request,
        )  # fmt: skip
    return body


class EnvironmentLockView(APIView):
    allowed_roles = {"POST": ANY_ROLE}

    @extend_schema(
        operation_id="EnvironmentsController_lock",
        summary="Lock an environment (credentials only to its holder: owners, application tokens)",
        tags=["Environments"],
        request=LockEnvironmentSerializer,
        responses={200: _environment_lock},
    )
    def post(self, request: Request, environment_id) -> Response:
        environment = environment_reads.environment_get(environment_id)
        data = validated(LockEnvironmentSerializer, request.data)
        ticket = environments.environment_lock(
            actor=request.auth, environment=environment, lease_seconds=data["durationMinutes"] * 60,
            reason=data["reason"], wait_seconds=data["waitTimeoutSeconds"] if data["wait"] else 0,
            idempotency_key=idempotency_key(request, data["idempotencyKey"]),
        )  # fmt: skip
        return Response(_lock_body(request, environment, ticket, data))


class EnvironmentLockAnyView(APIView):
    allowed_roles = {"POST": ANY_ROLE}

    @extend_schema(
        operation_id="EnvironmentsController_lockAny",
        summary="Lock whichever environment of a set (names, or a category) is free first",
        tags=["Environments"],
        request=LockAnyEnvironmentSerializer,
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request: Request) -> Response:
        data = validated(LockAnyEnvironmentSerializer, request.data)
        from apps.projects.selectors import project_get

        project_get(data["repositoryIdentifier"])  # 404 naming an unknown repository
        candidates = environment_reads.environments_for_lock_any(
            repository=data["repositoryIdentifier"], category=data.get("category"),
            names=data.get("names"),
        )  # fmt: skip
        lock_request = environments.environment_lock_any(
            actor=request.auth, environments=candidates,
            lease_seconds=data["durationMinutes"] * 60, reason=data["reason"],
            wait_seconds=data["waitTimeoutSeconds"] if data["wait"] else 0,
            idempotency_key=idempotency_key(request, data["idempotencyKey"]),
        )  # fmt: skip
        body = {
            "requestId": str(lock_request.request_id),
            "candidates": [e.name for e in candidates],
            "status": "queued" if not lock_request.cancelled_at else "cancelled",
            "environmentId": None, "environmentName": None, "ticketId": None,
        }  # fmt: skip
        if lock_request.granted_ticket_id:
            ticket = lock_request.granted_ticket
            granted = next(e for e in candidates if e.lock_resource == ticket.resource_row.resource)
            body |= _lock_body(request, granted, ticket, data)
        return Response(body)


class EnvironmentCredentialsView(APIView):
    allowed_roles = {"GET": PRIVILEGED}

    @extend_schema(
        operation_id="EnvironmentsController_credentials",
        summary="Credentials of a locked environment, for its lock holder",
        tags=["Environments"],
        parameters=[
            OpenApiParameter("ticketId", str, required=True),
            OpenApiParameter("authType", str, enum=["accessToken", "sfdxAuthUrl"]),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, environment_id) -> Response:
        environment = environment_reads.environment_get(environment_id)
        ticket_id = request.query_params.get("ticketId")
        if not ticket_id:
            raise InvalidRequest("ticketId is required", details={"ticketId": ["Required."]})
        return Response(
            environments.environment_credentials(
                actor=request.auth, environment=environment, ticket_id=ticket_id,
                auth_type=request.query_params.get("authType", "accessToken"),
                request=request._request,
            )
        )  # fmt: skip


class EnvironmentUnlockView(APIView):
    allowed_roles = {"POST": ANY_ROLE}

    @extend_schema(
        operation_id="EnvironmentsController_unlock",
        summary="Release an environment's lock by ticket",
        tags=["Environments"],
        request=UnlockEnvironmentSerializer,
        responses={200: _lock},
    )
    def post(self, request: Request, environment_id) -> Response:
        environment = environment_reads.environment_get(environment_id)
        data = validated(UnlockEnvironmentSerializer, request.data)
        ticket = locks.lock_release(
            repository=environment.project.identifier, resource=environment.lock_resource,
            ticket_id=data["ticketId"], principal=request.auth,
        )  # fmt: skip
        return Response(lock_reads.ticket_dto(ticket))
