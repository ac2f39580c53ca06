"""The Salesforce org registry on the published paths under `/sfp/api/auth/salesforce/`."""

from drf_spectacular.types import OpenApiTypes
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

from apps.core.exceptions import InvalidRequest
from apps.core.validation import validated
from apps.environments import environments, locks, selectors, services
from apps.environments.models import Category, Environment

ANY_ROLE = ("owner", "member", "application")
OWNER = ("owner",)
OWNER_APPLICATION = ("owner", "application")

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def _flag(params, *names: str) -> bool | None:
    for name in names:
        raw = params.get(name)
        if raw is None or raw == "":
            continue
        lowered = raw.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise InvalidRequest(f"{name} must be true or false", details={name: ["Boolean."]})
    return None


class RegisterOrgSerializer(serializers.Serializer):
    sfdxAuthUrl = serializers.CharField(max_length=4096)
    instanceUrl = serializers.URLField(required=False)
    username = serializers.CharField(required=False, max_length=254)
    isDevHub = serializers.BooleanField(default=False)
    isDefault = serializers.BooleanField(default=False)
    metadata = serializers.DictField(required=False)


class OrgSerializer(serializers.Serializer):
    """SalesforceOrgDto."""

    username = serializers.CharField()
    instanceUrl = serializers.URLField()
    orgId = serializers.CharField()
    organizationType = serializers.CharField()
    instanceName = serializers.CharField()
    isSandbox = serializers.BooleanField()
    parentProductionUsername = serializers.CharField(allow_null=True)
    isJitRegistration = serializers.BooleanField()
    isDevHub = serializers.BooleanField()
    isDefault = serializers.BooleanField()
    metadata = serializers.DictField()
    sfdxAuthUrl = serializers.CharField(required=False)


class TestConnectionSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=254)


def _dto(request: Request, org, include_auth_url: bool) -> dict:
    dto = selectors.org_dto(org)
    if include_auth_url:
        dto["sfdxAuthUrl"] = services.org_reveal_auth_url(
            actor=request.auth, org=org, request=request._request
        )
    return dto


_INCLUDE = OpenApiParameter(
    "includeAuthUrl", bool, description="Include the auth URL (owners and application tokens)"
)


class RegisterOrgView(APIView):
    allowed_roles = {"POST": OWNER_APPLICATION}

    @extend_schema(
        operation_id="SalesforceAuthController_register",
        summary="Register or update a Salesforce org (validates the connection first)",
        tags=["Orgs"],
        request=RegisterOrgSerializer,
        responses={
            201: OrgSerializer,
            200: OrgSerializer,
            400: OpenApiResponse(description="Invalid input or connection failed"),
        },
    )
    def post(self, request: Request) -> Response:
        data = validated(RegisterOrgSerializer, request.data)
        org, created = services.org_register(
            actor=request.auth,
            sfdx_auth_url=data["sfdxAuthUrl"],
            username=data.get("username"),
            is_devhub=data["isDevHub"],
            is_default=data["isDefault"],
            metadata=data.get("metadata"),
            request=request._request,
        )
        return Response(selectors.org_dto(org), status=201 if created else 200)


class OrgsView(APIView):
    allowed_roles = {"GET": ANY_ROLE}

    @extend_schema(
        operation_id="SalesforceAuthController_listOrgs",
        summary="List registered Salesforce orgs",
        tags=["Orgs"],
        parameters=[
            OpenApiParameter(
                "type", str, description="sandbox, production or an organization type"
            ),
            OpenApiParameter("devhub", bool),
            OpenApiParameter("metadata", str, description="k=v,k2=v2 or a JSON object"),
            _INCLUDE,
        ],
        responses={200: OrgSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        include = bool(_flag(params, "includeAuthUrl", "include-sfdxAuthUrl"))
        if include:
            services.require_credential_role(request.auth)
        orgs = selectors.orgs_filtered(
            org_type=params.get("type") or None,
            devhub=_flag(params, "devhub"),
            metadata=selectors.parse_metadata_filter(params["metadata"])
            if params.get("metadata")
            else None,
        )
        return Response([_dto(request, org, include) for org in orgs])


class OrgView(APIView):
    allowed_roles = {"GET": ANY_ROLE, "DELETE": OWNER}

    @extend_schema(
        operation_id="SalesforceAuthController_getOrg",
        summary="Get a registered org",
        tags=["Orgs"],
        parameters=[OpenApiParameter("username", str, required=True), _INCLUDE],
        responses={200: OrgSerializer},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        include = bool(_flag(params, "includeAuthUrl", "include-sfdxAuthUrl"))
        if include:
            services.require_credential_role(request.auth)
        org = selectors.org_by_username(_username(params))
        return Response(_dto(request, org, include))

    @extend_schema(
        operation_id="SalesforceAuthController_deleteOrg",
        summary="Delete a Salesforce org registration",
        tags=["Orgs"],
        parameters=[OpenApiParameter("username", str, required=True)],
        responses={
            200: inline_serializer("DeleteOrgResponse", {"message": serializers.CharField()})
        },
    )
    def delete(self, request: Request) -> Response:
        services.org_delete(
            actor=request.auth, username=_username(request.query_params), request=request._request
        )
        return Response({"message": "Organization successfully deleted"})


def _username(params) -> str:
    username = (params.get("username") or "").strip()
    if not username:
        raise InvalidRequest("username is required", details={"username": ["Required."]})
    return username


class TestConnectionView(APIView):
    allowed_roles = {"POST": ANY_ROLE}

    @extend_schema(
        operation_id="SalesforceAuthController_testConnection",
        summary="Test a registered org's connection",
        tags=["Orgs"],
        request=TestConnectionSerializer,
        responses={
            200: inline_serializer(
                "SalesforceConnectionTestResponse",
                {
                    "success": serializers.BooleanField(),
                    "username": serializers.CharField(),
                    "message": serializers.CharField(),
                },
            )
        },
    )
    def post(self, request: Request) -> Response:
        data = validated(TestConnectionSerializer, request.data)
        org = selectors.org_by_username(data["username"])
        return Response(services.org_test_connection(org=org))


# --- lock queue -----------------------------------------------------------------------------


class QueueLockSerializer(serializers.Serializer):
    repository = serializers.CharField(max_length=255)
    resource = serializers.CharField(max_length=255)
    leaseDurationSeconds = serializers.IntegerField(min_value=1, max_value=locks.MAX_LEASE_SECONDS)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


_lock = inline_serializer(
    "LockTicket",
    {
        "ticketId": serializers.UUIDField(),
        "repository": serializers.CharField(),
        "resource": serializers.CharField(),
        "status": serializers.ChoiceField(
            choices=["queued", "acquired", "released", "expired", "cancelled"]
        ),
        "queuePosition": serializers.IntegerField(),
        "leaseStart": serializers.DateTimeField(allow_null=True),
        "leaseDurationSeconds": serializers.IntegerField(),
    },
)


class LocksView(APIView):
    allowed_roles = {"POST": OWNER_APPLICATION}

    @extend_schema(
        operation_id="MutexController_queueLock",
        summary="Queue a lock for a resource (returns a ticket; queued if held)",
        tags=["Locks"],
        request=QueueLockSerializer,
        responses={201: _lock},
    )
    def post(self, request: Request) -> Response:
        data = validated(QueueLockSerializer, request.data)
        ticket = locks.request_lock(
            holder=locks.Holder.of(request.auth),
            repository=data["repository"],
            resource=data["resource"],
            lease_seconds=data["leaseDurationSeconds"],
            reason=data["reason"],
        )
        return Response(locks.ticket_dto(ticket), status=201)


class LockTicketView(APIView):
    allowed_roles = {"GET": ANY_ROLE, "DELETE": ANY_ROLE}

    @extend_schema(
        operation_id="MutexController_getLockStatus",
        summary="Get the status of a lock ticket",
        tags=["Locks"],
        responses={200: _lock},
    )
    def get(self, request: Request, repository: str, resource: str, ticket_id) -> Response:
        ticket = locks.ticket_get(repository=repository, resource=resource, ticket_id=ticket_id)
        return Response(locks.ticket_dto(ticket))

    @extend_schema(
        operation_id="MutexController_releaseLock",
        summary="Release a lock (holder, owner or application); a queued ticket is cancelled",
        tags=["Locks"],
        responses={200: _lock},
    )
    def delete(self, request: Request, repository: str, resource: str, ticket_id) -> Response:
        ticket = locks.release(
            repository=repository, resource=resource, ticket_id=ticket_id, principal=request.auth
        )
        return Response(locks.ticket_dto(ticket) | {"message": "Lock released successfully"})


class ResourceLocksView(APIView):
    allowed_roles = {"GET": ANY_ROLE}

    @extend_schema(
        operation_id="MutexController_getLocks",
        summary="All lock requests for a resource, in queue order",
        tags=["Locks"],
        responses={200: _lock},
    )
    def get(self, request: Request, repository: str, resource: str) -> Response:
        tickets = locks.tickets_for(repository=repository, resource=resource)
        return Response([locks.ticket_dto(t) for t in tickets])


# --- environments ---------------------------------------------------------------------------


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


class UnlockEnvironmentSerializer(serializers.Serializer):
    ticketId = serializers.UUIDField()


def environment_dto(environment, status: dict | None = None) -> dict:
    """An environment as the API shows it; `status` when its lock status was read in bulk."""
    status = status or environments.lock_status(environment)
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
        "name": serializers.CharField(),
        "category": serializers.CharField(),
        "lockStatus": serializers.DictField(),
    },
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
        responses={200: _environment},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        found = Environment.objects.select_related("project", "org").all()
        if params.get("repositoryIdentifier"):
            found = found.filter(project__identifier=params["repositoryIdentifier"])
        category = params.get("category")
        if category:
            if category not in Category.values:
                raise InvalidRequest(
                    f"Unknown category {category}", details={"category": Category.values}
                )
            found = found.filter(category=category)
        active = _flag(params, "isActive")
        if active is not None:
            found = found.filter(is_active=active)
        if params.get("branch"):
            found = found.filter(branch=params["branch"])
        wanted_tags = [t for value in params.getlist("tags") for t in value.split(",") if t]
        rows = [e for e in found if set(wanted_tags) <= set(e.tags)]
        statuses = environments.lock_statuses(rows)
        if category:
            return Response([environment_dto(e, statuses[e.pk]) for e in rows])
        grouped = {c: [] for c in Category.values}
        for environment in rows:
            grouped[environment.category].append(
                environment_dto(environment, statuses[environment.pk])
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
        names = environments.orchestration_order(
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
        return Response(environment_dto(environments.environment_get(environment_id)))

    @extend_schema(
        operation_id="EnvironmentsController_update",
        summary="Update an environment",
        tags=["Environments"],
        request=EnvironmentFieldsSerializer,
        responses={200: _environment},
    )
    def put(self, request: Request, environment_id) -> Response:
        environment = environments.environment_get(environment_id)
        data = validated(EnvironmentFieldsSerializer, request.data)
        environments.environment_update(
            actor=request.auth, environment=environment, fields=data, request=request._request
        )
        return Response(environment_dto(environments.environment_get(environment_id)))

    @extend_schema(
        operation_id="EnvironmentsController_remove",
        summary="Delete an environment (the org is untouched)",
        tags=["Environments"],
        responses={
            200: inline_serializer("DeleteEnvironment", {"success": serializers.BooleanField()})
        },
    )
    def delete(self, request: Request, environment_id) -> Response:
        environment = environments.environment_get(environment_id)
        environments.environment_delete(
            actor=request.auth, environment=environment, request=request._request
        )
        return Response({"success": True})


class EnvironmentMetadataView(APIView):
    allowed_roles = {"PATCH": OWNER_APPLICATION}

    @extend_schema(
        operation_id="EnvironmentsController_patchMetadata",
        summary="Merge keys into an environment's metadata (null removes a key)",
        tags=["Environments"],
        request=OpenApiTypes.OBJECT,
        responses={200: _environment},
    )
    def patch(self, request: Request, environment_id) -> Response:
        environment = environments.environment_get(environment_id)
        if not isinstance(request.data, dict) or not request.data:
            raise InvalidRequest("Send an object of metadata keys to set (null removes a key)")
        environments.environment_patch_metadata(
            actor=request.auth,
            environment=environment,
            changes=dict(request.data),
            request=request._request,
        )
        return Response(environment_dto(environments.environment_get(environment_id)))


class EnvironmentLockView(APIView):
    allowed_roles = {"POST": ANY_ROLE}

    @extend_schema(
        operation_id="EnvironmentsController_lock",
        summary="Lock an environment (credentials only to its holder: owners, application tokens)",
        tags=["Environments"],
        request=LockEnvironmentSerializer,
        responses={
            200: inline_serializer(
                "EnvironmentLock",
                {"ticketId": serializers.UUIDField(), "status": serializers.CharField()},
            )
        },
    )
    def post(self, request: Request, environment_id) -> Response:
        environment = environments.environment_get(environment_id)
        data = validated(LockEnvironmentSerializer, request.data)
        ticket = environments.environment_lock(
            actor=request.auth, environment=environment, lease_seconds=data["durationMinutes"] * 60,
            reason=data["reason"], wait_seconds=data["waitTimeoutSeconds"] if data["wait"] else 0,
        )  # fmt: skip
        body = {
            "ticketId": str(ticket.ticket_id), "status": ticket.status,
            "environmentId": str(environment.pk), "environmentName": environment.name,
            "duration": data["durationMinutes"], "queuePosition": locks.queue_position(ticket),
            "salesforceUsername": environment.org.username if environment.org else None,
        }  # fmt: skip
        wants_credentials = data["authType"] != "none"
        if (
            ticket.status == "acquired"
            and wants_credentials
            and request.auth.roles & {"owner", "application"}
        ):
            body |= environments.environment_credentials(
                actor=request.auth, environment=environment, ticket_id=ticket.ticket_id,
                auth_type=data["authType"], request=request._request,
            )  # fmt: skip
        return Response(body)


class EnvironmentCredentialsView(APIView):
    allowed_roles = {"GET": OWNER_APPLICATION}

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
        environment = environments.environment_get(environment_id)
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
        environment = environments.environment_get(environment_id)
        data = validated(UnlockEnvironmentSerializer, request.data)
        ticket = locks.release(
            repository=environment.project.identifier, resource=environment.lock_resource,
            ticket_id=data["ticketId"], principal=request.auth,
        )  # fmt: skip
        return Response(locks.ticket_dto(ticket))
