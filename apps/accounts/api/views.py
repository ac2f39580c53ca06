"""Accounts endpoints on the published paths. Each view declares its roles (`allowed_roles`);
the work is done by services and selectors."""

import csv
import io

from django.http import HttpResponse
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import selectors, services
from apps.accounts.api.serializers import (
    AddMemberSerializer,
    AdminLoginSerializer,
    ApplicationTokenSerializer,
    AuditQuerySerializer,
    CallbackSerializer,
    CreatedTokenSerializer,
    CreateTeamSerializer,
    CreateTokenSerializer,
    CreateUserSerializer,
    DeleteUserSerializer,
    LoginResponseSerializer,
    MemberRoleSerializer,
    MembershipSerializer,
    RefreshSerializer,
    UpdateUserSerializer,
    UserSerializer,
)
from apps.accounts.authentication import authenticate_access_token
from apps.accounts.models import ApplicationToken, Role, Team, TeamRole
from apps.accounts.roles import ANY_ROLE, DASHBOARD_ROLES, OWNER, is_privileged
from apps.accounts.tokens import TokenError
from apps.core.exceptions import Forbidden
from apps.core.pagination import limit_offset
from apps.core.permissions import PUBLIC, requires_role_message
from apps.core.validation import validated

_success = inline_serializer("SuccessResponse", {"success": serializers.BooleanField()})


def _session_body(tokens: services.SessionTokens) -> dict:
    return {
        "success": True,
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "expires_at": tokens.expires_at.isoformat(),
        "user": selectors.user_dto(tokens.user),
    }


def _token_dto(token: ApplicationToken) -> dict:
    return {
        "id": token.pk,
        "name": token.name,
        "createdAt": token.created_at.isoformat(),
        "expiresAt": token.expires_at.isoformat(),
        "lastUsedAt": token.last_used_at.isoformat() if token.last_used_at else None,
        "status": token.status,
        "last4": token.last4,
        "createdBy": token.created_by.email,
    }


# --- authentication -------------------------------------------------------------------------


class PublicAuthView(APIView):
    """Public endpoints that check a credential in their body: no header authentication, and a
    refused credential is a 401 with a Bearer challenge (DRF would otherwise answer 403)."""

    authentication_classes: list = []
    allowed_roles = PUBLIC

    def get_authenticate_header(self, request) -> str:
        return 'Bearer realm="sfp"'


class AdminLoginView(PublicAuthView):
    @extend_schema(
        operation_id="AuthController_adminLogin",
        summary="Admin login with username and password",
        tags=["Authentication"],
        auth=[],
        request=AdminLoginSerializer,
        responses={
            200: LoginResponseSerializer,
            401: OpenApiResponse(description="Invalid credentials or insufficient permissions"),
            429: OpenApiResponse(description="Rate limit exceeded"),
        },
    )
    def post(self, request: Request) -> Response:
        data = validated(AdminLoginSerializer, request.data)
        try:
            tokens = services.session_login(
                email=data["email"], password=data["password"], request=request._request
            )
        except services.LoginThrottled as throttled:
            raise exceptions.Throttled(wait=throttled.retry_after, detail=str(throttled)) from None
        except services.LoginFailed as failed:
            raise exceptions.AuthenticationFailed(str(failed)) from None
        return Response(_session_body(tokens))


class RefreshView(PublicAuthView):
    @extend_schema(
        operation_id="AuthController_refresh",
        summary="Exchange a refresh token for a new session (the refresh token rotates)",
        tags=["Authentication"],
        auth=[],
        request=RefreshSerializer,
        responses={200: LoginResponseSerializer, 401: OpenApiResponse(description="Refused")},
    )
    def post(self, request: Request) -> Response:
        data = validated(RefreshSerializer, request.data)
        try:
            tokens = services.session_refresh(
                raw_refresh=data["refresh_token"], request=request._request
            )
        except services.RefreshFailed as failed:
            raise exceptions.AuthenticationFailed(str(failed)) from None
        return Response(_session_body(tokens))


class LogoutView(PublicAuthView):
    @extend_schema(
        operation_id="AuthController_logout",
        summary="End a session: its refresh tokens are revoked",
        tags=["Authentication"],
        auth=[],
        request=RefreshSerializer,
        responses={200: _success, 401: OpenApiResponse(description="Invalid refresh token")},
    )
    def post(self, request: Request) -> Response:
        data = validated(RefreshSerializer, request.data)
        try:
            services.session_logout(raw_refresh=data["refresh_token"], request=request._request)
        except services.RefreshFailed as failed:
            raise exceptions.AuthenticationFailed(str(failed)) from None
        return Response({"success": True})


class CallbackView(PublicAuthView):
    @extend_schema(
        operation_id="AuthController_handleCallback",
        summary="Handle authentication callback (validate access token + optional refresh token)",
        tags=["Authentication"],
        auth=[],
        request=CallbackSerializer,
        responses={
            200: inline_serializer(
                "AuthCallbackResponse",
                {"success": serializers.BooleanField(), "data": serializers.DictField()},
            ),
            401: OpenApiResponse(description="No access token provided or invalid token"),
        },
    )
    def post(self, request: Request) -> Response:
        data = validated(CallbackSerializer, request.data)
        try:
            principal = authenticate_access_token(data["access_token"])
        except TokenError as error:
            raise exceptions.AuthenticationFailed(str(error)) from None
        return Response(
            {
                "success": True,
                "data": {"userId": str(principal.user.pk), "email": principal.user.email},
            }
        )


# --- users ----------------------------------------------------------------------------------


class MeView(APIView):
    allowed_roles = ANY_ROLE

    @extend_schema(
        operation_id="UsersController_getMe",
        summary="Get current user",
        tags=["Users"],
        responses={200: UserSerializer},
    )
    def get(self, request: Request) -> Response:
        dto = selectors.user_dto(request.auth.user)
        if request.auth.is_token:
            dto["role"] = request.auth.primary_role
            dto["tokenId"] = request.auth.token.pk
        return Response(dto)


class UsersView(APIView):
    allowed_roles = {"GET": OWNER, "POST": OWNER, "DELETE": OWNER}
    delete_takes_body = True  # the email of the user to delete, as published

    @extend_schema(
        operation_id="UsersController_listUsers",
        summary="List users or look one up by email",
        tags=["Users"],
        parameters=[
            OpenApiParameter("team", str, description="Team slug"),
            OpenApiParameter("role", str, enum=TeamRole.values),
            OpenApiParameter("limit", int),
            OpenApiParameter("offset", int),
            OpenApiParameter("lookup", str, enum=["email"]),
            OpenApiParameter("id", str, description="Email to look up (lookup=email)"),
        ],
        responses={
            200: inline_serializer(
                "ListUsersResponse",
                {
                    "users": UserSerializer(many=True),
                    "total": serializers.IntegerField(),
                    "limit": serializers.IntegerField(),
                    "offset": serializers.IntegerField(),
                },
            )
        },
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        if params.get("lookup"):
            if params["lookup"] != "email" or not params.get("id"):
                raise exceptions.ValidationError({"lookup": ["Use lookup=email with id=<email>."]})
            user = selectors.user_by_email(params["id"])
            return Response(selectors.user_dto(user, full=user.pk == request.auth.user.pk))
        role = params.get("role")
        if role and role not in TeamRole.values:
            raise exceptions.ValidationError({"role": ["Must be owner or member."]})
        team = selectors.team_by_slug(params["team"]) if params.get("team") else None
        limit, offset = limit_offset(params)
        users = selectors.users_filtered(team=team, role=role)
        page = users[offset : offset + limit]
        return Response(
            {
                "users": [
                    selectors.user_dto(u, team=team, full=u.pk == request.auth.user.pk)
                    for u in page
                ],
                "total": users.count(),
                "limit": limit,
                "offset": offset,
            }
        )

    @extend_schema(
        operation_id="UsersController_createUser",
        summary="Provision a user in a team",
        tags=["Users"],
        request=CreateUserSerializer,
        responses={
            201: inline_serializer(
                "CreateUserResponse",
                {"success": serializers.BooleanField(), "user": UserSerializer()},
            )
        },
    )
    def post(self, request: Request) -> Response:
        data = validated(CreateUserSerializer, request.data)
        if data.get("team"):
            team = selectors.team_by_slug(data["team"])
        else:
            team = Team.objects.order_by("created_at").first()
        user = services.user_provision(
            actor=request.auth,
            email=data["email"],
            first_name=data.get("firstName", ""),
            last_name=data.get("lastName", ""),
            team=team,
            role=data["role"],
            password=data.get("password"),
            request=request._request,
        )
        return Response(
            {"success": True, "user": selectors.user_dto(user, team=team, full=False)}, status=201
        )

    @extend_schema(
        operation_id="UsersController_deleteUser",
        summary="Delete a user",
        tags=["Users"],
        request=DeleteUserSerializer,
        responses={200: _success},
    )
    def delete(self, request: Request) -> Response:
        data = validated(DeleteUserSerializer, request.data)
        user = selectors.user_by_email(data["email"])
        services.user_delete(actor=request.auth, user=user, request=request._request)
        return Response({"success": True})


class UserDetailView(APIView):
    allowed_roles = {"GET": DASHBOARD_ROLES, "PUT": DASHBOARD_ROLES}

    def _target(self, request: Request, email: str):
        user = selectors.user_by_email(email)
        is_self = user.pk == request.auth.user.pk
        if not is_self and Role.OWNER not in request.auth.roles:
            raise Forbidden(requires_role_message(OWNER))
        team = (
            selectors.team_by_slug(request.query_params["team"])
            if request.query_params.get("team")
            else None
        )
        return user, is_self, team

    @extend_schema(
        operation_id="UsersController_getUser",
        summary="Get user by email (self: full profile; owner: limited data)",
        tags=["Users"],
        parameters=[OpenApiParameter("team", str)],
        responses={200: UserSerializer},
    )
    def get(self, request: Request, email: str) -> Response:
        user, is_self, team = self._target(request, email)
        return Response(selectors.user_dto(user, team=team, full=is_self))

    @extend_schema(
        operation_id="UsersController_updateUser",
        summary="Update user details (self or owner; no self-escalation)",
        tags=["Users"],
        parameters=[OpenApiParameter("team", str)],
        request=UpdateUserSerializer,
        responses={
            200: inline_serializer(
                "UpdateUserResponse",
                {"success": serializers.BooleanField(), "user": UserSerializer()},
            )
        },
    )
    def put(self, request: Request, email: str) -> Response:
        user, is_self, team = self._target(request, email)
        data = validated(UpdateUserSerializer, request.data)
        services.user_update(
            actor=request.auth,
            user=user,
            first_name=data.get("firstName"),
            last_name=data.get("lastName"),
            role=data.get("role"),
            team=team,
            request=request._request,
        )
        user.refresh_from_db()
        return Response(
            {"success": True, "user": selectors.user_dto(user, team=team, full=is_self)}
        )


# --- teams ----------------------------------------------------------------------------------


def _team_dto(team: Team) -> dict:
    return {
        "id": str(team.pk),
        "slug": team.slug,
        "name": team.name,
        "description": team.description,
        "createdAt": team.created_at.isoformat(),
    }


class TeamSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    slug = serializers.SlugField()
    name = serializers.CharField()
    description = serializers.CharField()
    createdAt = serializers.DateTimeField()


class TeamsView(APIView):
    allowed_roles = {"GET": DASHBOARD_ROLES, "POST": OWNER}

    @extend_schema(
        operation_id="TeamsController_listTeams",
        summary="List teams (owners see all, members their own)",
        tags=["Teams"],
        responses={
            200: inline_serializer("ListTeamsResponse", {"teams": TeamSerializer(many=True)})
        },
    )
    def get(self, request: Request) -> Response:
        teams = Team.objects.all()
        if Role.OWNER not in request.auth.roles:
            teams = teams.filter(memberships__user=request.auth.user)
        return Response({"teams": [_team_dto(t) for t in teams.order_by("slug")]})

    @extend_schema(
        operation_id="TeamsController_createTeam",
        summary="Create a new team (creator becomes owner)",
        tags=["Teams"],
        request=CreateTeamSerializer,
        responses={
            201: inline_serializer(
                "CreateTeamResponse",
                {"success": serializers.BooleanField(), "team": TeamSerializer()},
            )
        },
    )
    def post(self, request: Request) -> Response:
        data = validated(CreateTeamSerializer, request.data)
        team = services.team_create(
            actor=request.auth,
            slug=data["slug"],
            name=data["name"],
            description=data.get("description", ""),
            request=request._request,
        )
        return Response({"success": True, "team": _team_dto(team)}, status=201)


class TeamDetailView(APIView):
    allowed_roles = {"DELETE": OWNER}

    @extend_schema(
        operation_id="TeamsController_deleteTeam",
        summary="Delete a team (the last team cannot be deleted)",
        tags=["Teams"],
        responses={200: _success},
    )
    def delete(self, request: Request, slug: str) -> Response:
        team = selectors.team_by_slug(slug)
        services.team_delete(actor=request.auth, team=team, request=request._request)
        return Response({"success": True})


class TeamMembersView(APIView):
    allowed_roles = {"GET": ANY_ROLE, "POST": OWNER}

    @extend_schema(
        operation_id="TeamsController_listTeamMembers",
        summary="List members of a team",
        tags=["Teams"],
        parameters=[
            OpenApiParameter("role", str, enum=TeamRole.values),
            OpenApiParameter("limit", int),
            OpenApiParameter("offset", int),
        ],
        responses={
            200: inline_serializer(
                "ListTeamMembersResponse",
                {"members": MembershipSerializer(many=True), "total": serializers.IntegerField()},
            )
        },
    )
    def get(self, request: Request, slug: str) -> Response:
        team = selectors.team_by_slug(slug)
        principal = request.auth
        if not (is_privileged(principal) or selectors.is_team_member(principal.user, team)):
            raise Forbidden("Forbidden - not a member of team " + team.slug)
        role = request.query_params.get("role")
        if role and role not in TeamRole.values:
            raise exceptions.ValidationError({"role": ["Must be owner or member."]})
        limit, offset = limit_offset(request.query_params)
        members = selectors.team_members(team=team, role=role)
        return Response(
            {
                "members": [selectors.membership_dto(m) for m in members[offset : offset + limit]],
                "total": members.count(),
            }
        )

    @extend_schema(
        operation_id="TeamsController_addTeamMember",
        summary="Add a member to a team",
        tags=["Teams"],
        request=AddMemberSerializer,
        responses={
            201: inline_serializer(
                "AddTeamMemberResponse",
                {"success": serializers.BooleanField(), "membership": MembershipSerializer()},
            )
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        team = selectors.team_by_slug(slug)
        data = validated(AddMemberSerializer, request.data)
        membership = services.membership_add(
            actor=request.auth,
            team=team,
            email=data["email"],
            role=data["role"],
            request=request._request,
        )
        return Response(
            {"success": True, "membership": selectors.membership_dto(membership)}, status=201
        )


class TeamMemberView(APIView):
    allowed_roles = {"DELETE": DASHBOARD_ROLES}

    @extend_schema(
        operation_id="TeamsController_removeTeamMember",
        summary="Remove a member from a team (a team keeps at least one owner)",
        tags=["Teams"],
        responses={200: _success},
    )
    def delete(self, request: Request, slug: str, email: str) -> Response:
        team = selectors.team_by_slug(slug)
        services.membership_remove(
            actor=request.auth, team=team, email=email, request=request._request
        )
        return Response({"success": True})


class TeamMemberRoleView(APIView):
    allowed_roles = {"PUT": OWNER}

    @extend_schema(
        operation_id="TeamsController_updateMemberRole",
        summary="Update a team member's role",
        tags=["Teams"],
        request=MemberRoleSerializer,
        responses={
            200: inline_serializer(
                "UpdateMemberRoleResponse",
                {"success": serializers.BooleanField(), "membership": MembershipSerializer()},
            )
        },
    )
    def put(self, request: Request, slug: str, email: str) -> Response:
        team = selectors.team_by_slug(slug)
        data = validated(MemberRoleSerializer, request.data)
        membership = services.membership_set_role(
            actor=request.auth, team=team, email=email, role=data["role"], request=request._request
        )
        return Response({"success": True, "membership": selectors.membership_dto(membership)})


# --- application tokens ---------------------------------------------------------------------


class ApplicationTokensView(APIView):
    allowed_roles = {"GET": OWNER, "POST": OWNER}

    @extend_schema(
        operation_id="ApplicationTokenController_getTokens",
        summary="List all application tokens",
        tags=["Application Tokens"],
        responses={200: ApplicationTokenSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        tokens = ApplicationToken.objects.select_related("created_by").order_by("-created_at")
        return Response([_token_dto(t) for t in tokens])

    @extend_schema(
        operation_id="ApplicationTokenController_createToken",
        summary="Create a new application token (shown once)",
        tags=["Application Tokens"],
        request=CreateTokenSerializer,
        responses={201: CreatedTokenSerializer},
    )
    def post(self, request: Request) -> Response:
        data = validated(CreateTokenSerializer, request.data)
        token, raw = services.app_token_create(
            actor=request.auth,
            name=data["name"],
            expires_in_days=data["expiresIn"],
            request=request._request,
        )
        return Response(_token_dto(token) | {"token": raw}, status=201)


class ApplicationTokenView(APIView):
    allowed_roles = {"DELETE": OWNER}

    @extend_schema(
        operation_id="ApplicationTokenController_revokeToken",
        summary="Revoke an application token",
        tags=["Application Tokens"],
        responses={
            200: inline_serializer(
                "RevokeTokenResponse",
                {"success": serializers.BooleanField(), "token": ApplicationTokenSerializer()},
            )
        },
    )
    def delete(self, request: Request, token_id: str) -> Response:
        token = services.app_token_revoke(
            actor=request.auth, token_id=token_id, request=request._request
        )
        return Response({"success": True, "token": _token_dto(token)})


# --- audit ----------------------------------------------------------------------------------

_AUDIT_CSV_COLUMNS = [
    "id", "occurredAt", "action", "actorEmail", "actorTokenId", "actorRole", "method", "path",
    "operation", "statusCode", "clientIp", "userAgent", "requestId", "durationMs", "targetType",
    "targetId", "before", "after",
]  # fmt: skip


class AuditView(APIView):
    allowed_roles = {"GET": OWNER}

    @extend_schema(
        operation_id="AuditController_list",
        summary="Audit log, newest first (keyset pagination; JSON or CSV)",
        tags=["Audit"],
        parameters=[AuditQuerySerializer],
        responses={
            200: inline_serializer(
                "AuditPage",
                {
                    "items": serializers.ListField(child=serializers.DictField()),
                    "nextCursor": serializers.CharField(allow_null=True),
                    "total": serializers.IntegerField(
                        required=False, help_text="Exact; only with count=true"
                    ),
                },
            )
        },
    )
    def get(self, request: Request) -> Response | HttpResponse:
        query = validated(AuditQuerySerializer, request.query_params)
        filters = selectors.AuditFilters(
            actor=query.get("actor"),
            action=query.get("action"),
            path=query.get("path"),
            since=query.get("since"),
            until=query.get("until"),
        )
        events, next_cursor = selectors.audit_events(
            filters, cursor=query.get("cursor"), limit=query["limit"]
        )
        items = [selectors.audit_event_dto(e) for e in events]
        total = selectors.audit_events_total(filters) if query["count"] else None
        if query["format"] == "csv":
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=_AUDIT_CSV_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(items)
            response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = 'attachment; filename="audit.csv"'
            if next_cursor:
                response["X-Next-Cursor"] = next_cursor
            if total is not None:
                response["X-Total-Count"] = str(total)
            return response
        page = {"items": items, "nextCursor": next_cursor}
        return Response(page if total is None else page | {"total": total})
