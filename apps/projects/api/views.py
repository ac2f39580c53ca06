"""Projects on the published paths. Each view declares its roles (`allowed_roles`); services do
the validation, the versioned writes and the auditing."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.roles import ANY_ROLE, OWNER, PRIVILEGED
from apps.core.validation import validated
from apps.projects import selectors, services
from apps.projects.models import Platform


class CreateProjectSerializer(serializers.Serializer):
    identifier = serializers.CharField(trim_whitespace=False)
    remoteUrl = serializers.CharField(trim_whitespace=False)
    configuration = serializers.JSONField(required=False)


class PatchProjectSerializer(serializers.Serializer):
    property = serializers.CharField(
        help_text="remoteUrl, configuration, or a dot path below it (configuration.workItems)"
    )
    value = serializers.JSONField(allow_null=True)
    version = serializers.IntegerField(
        required=False, allow_null=True, help_text="Refuse with 409 unless this is current."
    )


class ProjectSerializer(serializers.Serializer):
    identifier = serializers.CharField()
    remoteUrl = serializers.CharField()
    platform = serializers.ChoiceField(choices=Platform.choices)
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()
    version = serializers.IntegerField()
    configuration = serializers.DictField()
    integrations = serializers.ListField(child=serializers.DictField())


_identifier = OpenApiParameter(
    "identifier",
    str,
    OpenApiParameter.PATH,
    description="Repository identifier, exact match; URL-encode '/' (flxbl-io%2Fsf-core)",
)


class ProjectsView(APIView):
    allowed_roles = {"GET": ANY_ROLE, "POST": OWNER}

    @extend_schema(
        operation_id="ProjectsController_listProjects",
        summary="List all onboarded projects",
        tags=["Projects"],
        responses={200: ProjectSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        return Response([selectors.project_dto(p) for p in selectors.projects_list()])

    @extend_schema(
        operation_id="ProjectsController_createProject",
        summary="Onboard a new repository (fails if it exists)",
        tags=["Projects"],
        request=CreateProjectSerializer,
        responses={201: ProjectSerializer},
    )
    def post(self, request: Request) -> Response:
        data = validated(CreateProjectSerializer, request.data)
        project = services.project_create(
            actor=request.auth,
            identifier=data["identifier"],
            remote_url=data["remoteUrl"],
            configuration=data.get("configuration"),
            request=request._request,
        )
        return Response(selectors.project_dto(project), status=201)


class ProjectDetailView(APIView):
    allowed_roles = {"GET": ANY_ROLE, "PATCH": PRIVILEGED, "DELETE": OWNER}

    @extend_schema(
        operation_id="ProjectsController_getProject",
        summary="Get a project by repository identifier",
        tags=["Projects"],
        parameters=[_identifier],
        responses={200: ProjectSerializer},
    )
    def get(self, request: Request, identifier: str) -> Response:
        return Response(selectors.project_dto(selectors.project_get(identifier)))

    @extend_schema(
        operation_id="ProjectsController_updateProject",
        summary="Update one project property by dot path (optimistic concurrency with version)",
        tags=["Projects"],
        parameters=[_identifier],
        request=PatchProjectSerializer,
        responses={200: ProjectSerializer},
    )
    def patch(self, request: Request, identifier: str) -> Response:
        selectors.project_get(identifier)  # an unknown project is a 404 before any body check
        data = validated(PatchProjectSerializer, request.data)
        project = services.project_patch(
            actor=request.auth,
            identifier=identifier,
            property_path=data["property"],
            value=data["value"],
            version=data.get("version"),
            request=request._request,
        )
        return Response(selectors.project_dto(project))

    @extend_schema(
        operation_id="ProjectsController_deleteProject",
        summary="Remove a project",
        tags=["Projects"],
        parameters=[_identifier],
        responses={
            200: inline_serializer("DeleteProjectResponse", {"success": serializers.BooleanField()})
        },
    )
    def delete(self, request: Request, identifier: str) -> Response:
        services.project_delete(actor=request.auth, identifier=identifier, request=request._request)
        return Response({"success": True})
