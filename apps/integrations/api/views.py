"""Integrations on the published paths, plus the internal grant-redemption endpoint. Each view
declares its roles; services do the work and the auditing."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.roles import OWNER, PRIVILEGED, Role
from apps.core.exceptions import InvalidRequest
from apps.core.validation import validated
from apps.integrations import grants, selectors, services
from apps.integrations.models import AuthType, Provider

APPLICATION = (Role.APPLICATION,)

# The older published body used snake_case; both spellings are accepted.
_LEGACY_NAMES = {"auth_type": "authType", "is_global": "isGlobal"}


class CreateIntegrationSerializer(serializers.Serializer):
    provider = serializers.ChoiceField(choices=Provider.choices, default=Provider.GITHUB)
    authType = serializers.ChoiceField(choices=AuthType.choices, default=AuthType.PAT)
    credentials = serializers.DictField()
    projects = serializers.ListField(child=serializers.CharField(), required=False)
    isGlobal = serializers.BooleanField(required=False)
    config = serializers.DictField(required=False)


class UpdateIntegrationSerializer(serializers.Serializer):
    credentials = serializers.DictField(required=False)
    config = serializers.DictField(required=False)


class CredentialsQuerySerializer(serializers.Serializer):
    provider = serializers.ChoiceField(choices=Provider.choices)
    project = serializers.CharField(required=False, allow_blank=True)


class RedeemSerializer(serializers.Serializer):
    items = serializers.ListField(child=serializers.DictField(), required=False)


class IntegrationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    provider = serializers.ChoiceField(choices=Provider.choices)
    authType = serializers.ChoiceField(choices=AuthType.choices)
    isGlobal = serializers.BooleanField()
    projects = serializers.ListField(child=serializers.CharField())
    config = serializers.DictField()
    credentialFields = serializers.ListField(child=serializers.CharField())
    createdBy = serializers.CharField()
    createdAt = serializers.DateTimeField()
    updatedAt = serializers.DateTimeField()


_revealed = inline_serializer(
    "IntegrationCredentials",
    {
        "integration_id": serializers.UUIDField(),
        "provider": serializers.CharField(),
        "auth_type": serializers.CharField(),
        "credentials": serializers.DictField(),
        "config": serializers.DictField(),
    },
)


class IntegrationsView(APIView):
    allowed_roles = {"GET": OWNER, "POST": OWNER}

    @extend_schema(
        operation_id="IntegrationsController_list",
        summary="List all integrations (metadata, no credentials)",
        tags=["Integrations"],
        parameters=[OpenApiParameter("provider", str, enum=Provider.values)],
        responses={200: IntegrationSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        provider = request.query_params.get("provider") or None
        if provider and provider not in Provider.values:
            raise InvalidRequest(f"Unknown provider {provider}", details={"provider": ["Unknown."]})
        return Response(
            [selectors.integration_dto(i) for i in selectors.integrations_list(provider=provider)]
        )

    @extend_schema(
        operation_id="IntegrationsController_create",
        summary="Store credentials for an external service (encrypted at rest)",
        tags=["Integrations"],
        request=CreateIntegrationSerializer,
        responses={201: IntegrationSerializer},
    )
    def post(self, request: Request) -> Response:
        body = request.data if isinstance(request.data, dict) else {}
        body = {_LEGACY_NAMES.get(key, key): value for key, value in body.items()}
        data = validated(CreateIntegrationSerializer, body)
        integration = services.integration_create(
            actor=request.auth,
            provider=data["provider"],
            auth_type=data["authType"],
            credentials=data["credentials"],
            is_global=data.get("isGlobal"),
            projects=data.get("projects"),
            config=data.get("config"),
            request=request._request,
        )
        return Response(selectors.integration_dto(integration), status=201)


class IntegrationDetailView(APIView):
    allowed_roles = {"GET": OWNER, "PUT": OWNER, "DELETE": OWNER}

    @extend_schema(
        operation_id="IntegrationsController_get",
        summary="Get one integration (metadata, no credentials)",
        tags=["Integrations"],
        responses={200: IntegrationSerializer},
    )
    def get(self, request: Request, integration_id) -> Response:
        return Response(selectors.integration_dto(selectors.integration_get(integration_id)))

    @extend_schema(
        operation_id="IntegrationsController_update",
        summary="Replace an integration's credentials and/or config",
        tags=["Integrations"],
        request=UpdateIntegrationSerializer,
        responses={200: IntegrationSerializer},
    )
    def put(self, request: Request, integration_id) -> Response:
        integration = selectors.integration_get(integration_id)
        data = validated(UpdateIntegrationSerializer, request.data)
        if not data:
            raise InvalidRequest("Nothing to update: send credentials and/or config")
        integration = services.integration_update(
            actor=request.auth,
            integration=integration,
            credentials=data.get("credentials"),
            config=data.get("config"),
            request=request._request,
        )
        return Response(selectors.integration_dto(integration))

    @extend_schema(
        operation_id="IntegrationsController_delete",
        summary="Delete an integration",
        tags=["Integrations"],
        responses={
            200: inline_serializer(
                "DeleteIntegrationResponse", {"success": serializers.BooleanField()}
            )
        },
    )
    def delete(self, request: Request, integration_id) -> Response:
        integration = selectors.integration_get(integration_id)
        services.integration_delete(
            actor=request.auth, integration=integration, request=request._request
        )
        return Response({"success": True})


class IntegrationTestConnectionView(APIView):
    allowed_roles = {"POST": OWNER}

    @extend_schema(
        operation_id="IntegrationsController_testConnection",
        summary="Call the provider with the stored credentials and report what answered",
        tags=["Integrations"],
        request=None,
        responses={
            200: inline_serializer(
                "IntegrationConnectionTest",
                {
                    "success": serializers.BooleanField(),
                    "details": serializers.DictField(),
                    "message": serializers.CharField(),
                },
            )
        },
    )
    def post(self, request: Request, integration_id) -> Response:
        integration = selectors.integration_get(integration_id)
        return Response(services.integration_test_connection(integration=integration))


class IntegrationCredentialsView(APIView):
    allowed_roles = {"GET": PRIVILEGED, "POST": PRIVILEGED}

    def _answer(self, request: Request, params) -> Response:
        query = validated(CredentialsQuerySerializer, params)
        revealed = services.integration_credentials_read(
            actor=request.auth,
            provider=query["provider"],
            project=query.get("project") or None,
            request=request._request,
        )
        return Response(revealed)

    @extend_schema(
        operation_id="IntegrationsController_getCredentialsByQuery",
        summary="Fetch stored credentials by provider/project (audited)",
        tags=["Integrations"],
        parameters=[CredentialsQuerySerializer],
        responses={200: _revealed},
    )
    def get(self, request: Request) -> Response:
        return self._answer(request, request.query_params)

    @extend_schema(
        operation_id="IntegrationsController_getCredentials",
        summary="Fetch stored credentials by provider/project (audited)",
        tags=["Integrations"],
        request=CredentialsQuerySerializer,
        responses={200: _revealed},
    )
    def post(self, request: Request) -> Response:
        return self._answer(request, request.data)


class GrantRedeemView(APIView):
    allowed_roles = {"POST": APPLICATION}

    @extend_schema(
        operation_id="FlowsController_redeemCredentialGrant",
        summary="Redeem a task's credential grant (its own worker, while the task runs)",
        tags=["Flows"],
        request=RedeemSerializer,
        responses={
            200: inline_serializer(
                "RedeemedCredentials",
                {"items": serializers.ListField(child=serializers.DictField())},
            )
        },
    )
    def post(self, request: Request, grant_id) -> Response:
        data = validated(RedeemSerializer, request.data)
        items = grants.grant_redeem(
            principal=request.auth,
            grant_id=grant_id,
            items=data.get("items"),
            request=request._request,
        )
        return Response({"items": items})
