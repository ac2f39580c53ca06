"""The Salesforce org registry on the published paths under `/sfp/api/auth/salesforce/`."""

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

from apps.accounts.roles import ANY_ROLE, OWNER, PRIVILEGED
from apps.core.exceptions import InvalidRequest
from apps.core.validation import validated
from apps.environments.selectors import orgs as selectors
from apps.environments.services import orgs as services

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
    allowed_roles = {"POST": PRIVILEGED}

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
