"""SSO endpoints: the SAML SP at its fixed published URLs (`/auth/v1/sso/saml/…`), the identity
provider API (`/sfp/api/sso/providers`, owner with a user session only) and `/sfp/api/config`.

RelayState may only point back at this server, or at a loopback address (the CLI's local
callback listener, e.g. `http://127.0.0.1:54329/callback`), which then receives the session's
tokens in the URL fragment and hands them to `POST /sfp/api/auth/callback`.
"""

from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Role
from apps.accounts.sso import saml, services
from apps.accounts.sso.models import SamlIdentityProvider
from apps.accounts.sso.selectors import sso_provider_for_email
from apps.core.errors import error_response
from apps.core.permissions import PUBLIC
from apps.core.validation import validated

_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


def relay_target(relay_state: str) -> tuple[str, bool]:
    """(where to go after login, whether it is a loopback CLI listener); anything else → '/'."""
    if not relay_state:
        return "/", False
    parts = urlsplit(relay_state)
    if parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS and parts.port:
        return relay_state, True
    public = urlsplit(settings.SFP_PUBLIC_URL)
    if not parts.scheme and not parts.netloc and relay_state.startswith("/"):
        if not relay_state.startswith("//") and "\\" not in relay_state:
            return relay_state, False
    if (parts.scheme, parts.netloc) == (public.scheme, public.netloc):
        return relay_state, False
    return "/", False


def _saml_disabled() -> HttpResponse | None:
    if settings.SFP_SAML_ENABLED:
        return None
    return error_response(404, "SAML single sign-on is disabled (SFP_SAML_ENABLED)")


@require_GET
def sp_metadata(request: HttpRequest) -> HttpResponse:
    if disabled := _saml_disabled():
        return disabled
    return HttpResponse(saml.sp_metadata_xml(), content_type="application/samlmetadata+xml")


@require_GET
def sp_login(request: HttpRequest) -> HttpResponse:
    """SP-initiated login: `?email=` picks the provider owning its domain."""
    if disabled := _saml_disabled():
        return disabled
    email = request.GET.get("email", "").strip().lower()
    provider = sso_provider_for_email(email)
    if provider is None:
        return error_response(400, f"No SSO provider owns the domain of {email or 'that email'}")
    relay, _ = relay_target(request.GET.get("redirect_to", ""))
    return HttpResponseRedirect(saml.login_url(provider=provider, relay_state=relay, email=email))


@csrf_exempt  # the IdP posts cross-site; the signed response is the credential
@require_POST
def acs(request: HttpRequest) -> HttpResponse:
    if disabled := _saml_disabled():
        return disabled
    saml_response = request.POST.get("SAMLResponse", "")
    relay_state = request.POST.get("RelayState", "")
    if not saml_response:
        return error_response(400, "SAMLResponse is required")
    try:
        identity = saml.acs_consume(saml_response=saml_response, relay_state=relay_state)
        user = services.sso_user_resolve(identity=identity)
    except saml.SamlRefused as refused:
        services.sso_login_refused(
            request=request, provider=refused.provider, reason=refused.reason
        )
        return error_response(401, f"SAML login refused: {refused.reason}")
    except services.SsoLoginRefused as refused:
        services.sso_login_refused(
            request=request, provider=identity.provider, reason=str(refused), email=identity.email
        )
        return error_response(403, str(refused))
    target, loopback = relay_target(relay_state)
    if loopback:
        tokens = services.sso_session_login(user=user, identity=identity, request=request)
        fragment = urlencode(
            {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token}
        )
        return HttpResponseRedirect(f"{target}#{fragment}")
    services.sso_browser_login(user=user, identity=identity, request=request)
    return HttpResponseRedirect(target)


# --- API ------------------------------------------------------------------------------------


def provider_dto(provider: SamlIdentityProvider) -> dict:
    return {
        "id": str(provider.pk),
        "entityId": provider.entity_id,
        "ssoUrl": provider.sso_url,
        "metadataUrl": provider.metadata_url or None,
        "domains": [d.domain for d in provider.domains.all()],
        "ssoRequired": any(d.sso_required for d in provider.domains.all()),
        "provisionTeam": provider.provision_team.slug if provider.provision_team else None,
        "metadataRefreshedAt": provider.metadata_refreshed_at.isoformat(),
        "metadataRefreshError": provider.metadata_refresh_error or None,
        "createdAt": provider.created_at.isoformat(),
    }


class CreateProviderSerializer(serializers.Serializer):
    metadataUrl = serializers.URLField(required=False, allow_blank=True, max_length=2048)
    metadataXml = serializers.CharField(required=False, allow_blank=True, max_length=1_000_000)
    domains = serializers.ListField(child=serializers.CharField(max_length=253), max_length=100)
    provisionTeam = serializers.SlugField(required=False, allow_blank=True)
    ssoRequired = serializers.BooleanField(required=False, default=False)


class ProviderSerializer(serializers.Serializer):
    """The shape of `provider_dto`, for the OpenAPI document."""

    id = serializers.UUIDField()
    entityId = serializers.CharField()
    ssoUrl = serializers.CharField()
    metadataUrl = serializers.CharField(allow_null=True)
    domains = serializers.ListField(child=serializers.CharField())
    ssoRequired = serializers.BooleanField()
    provisionTeam = serializers.CharField(allow_null=True)
    metadataRefreshedAt = serializers.DateTimeField()
    metadataRefreshError = serializers.CharField(allow_null=True)
    createdAt = serializers.DateTimeField()


_OWNER = (Role.OWNER.value,)
_SSO = ["SSO"]


class ProvidersView(APIView):
    allowed_roles = _OWNER

    @extend_schema(
        tags=_SSO,
        summary="List the SAML identity providers (owner, user session only)",
        responses={200: ProviderSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        services._require_user_principal(request.auth)
        providers = SamlIdentityProvider.objects.select_related("provision_team").prefetch_related(
            "domains"
        )
        return Response([provider_dto(p) for p in providers])

    @extend_schema(
        tags=_SSO,
        summary="Register a SAML identity provider from its metadata (URL or XML) and its domains",
        request=CreateProviderSerializer,
        responses={201: ProviderSerializer},
    )
    def post(self, request: Request) -> Response:
        services._require_user_principal(request.auth)
        data = validated(CreateProviderSerializer, request.data)
        provider = services.provider_create(
            actor=request.auth,
            domains=data["domains"],
            metadata_url=data.get("metadataUrl", ""),
            metadata_xml=data.get("metadataXml", ""),
            provision_team_slug=data.get("provisionTeam", ""),
            sso_required=data["ssoRequired"],
            request=request._request,
        )
        return Response(provider_dto(provider), status=201)


class ProviderView(APIView):
    allowed_roles = _OWNER

    @extend_schema(
        tags=_SSO,
        summary="Delete a SAML identity provider and release its domains",
        responses={
            200: inline_serializer(
                "DeleteSsoProviderResponse", {"success": serializers.BooleanField()}
            )
        },
    )
    def delete(self, request: Request, provider_id: str) -> Response:
        services.provider_delete(
            actor=request.auth, provider_id=provider_id, request=request._request
        )
        return Response({"success": True})


class ProviderRefreshView(APIView):
    allowed_roles = _OWNER

    @extend_schema(
        tags=_SSO,
        summary="Download and parse a provider's metadata again now",
        request=None,
        responses={200: ProviderSerializer},
    )
    def post(self, request: Request, provider_id: str) -> Response:
        provider = services.provider_refresh_by_id(
            actor=request.auth, provider_id=provider_id, request=request._request
        )
        return Response(provider_dto(provider))


class ConfigView(APIView):
    authentication_classes: list = []
    allowed_roles = PUBLIC

    @extend_schema(
        tags=["Authentication"],
        summary="The deployment's public sign-in configuration: mode, SAML SP and SSO providers",
        responses={
            200: inline_serializer(
                "PublicConfig",
                {
                    "deploymentMode": serializers.CharField(),
                    "saml": inline_serializer(
                        "PublicSamlConfig",
                        {
                            "enabled": serializers.BooleanField(),
                            "entityId": serializers.CharField(),
                            "acsUrl": serializers.CharField(),
                        },
                    ),
                    "ssoProviders": inline_serializer(
                        "PublicSsoProvider",
                        {
                            "id": serializers.UUIDField(),
                            "domains": serializers.ListField(child=serializers.CharField()),
                        },
                        many=True,
                    ),
                },
            )
        },
    )
    def get(self, request: Request) -> Response:
        providers = SamlIdentityProvider.objects.prefetch_related("domains")
        return Response(
            {
                "deploymentMode": "selfhosted",
                "saml": {
                    "enabled": settings.SFP_SAML_ENABLED,
                    "entityId": saml.sp_entity_id(),
                    "acsUrl": saml.sp_acs_url(),
                },
                "ssoProviders": [
                    {"id": str(p.pk), "domains": [d.domain for d in p.domains.all()]}
                    for p in providers
                ],
            }
        )
