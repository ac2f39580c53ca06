"""DRF authentication: `Authorization: Bearer <user JWT | application token>` → a Principal.

Application tokens (`sfp_app_…`) and user JWTs take separate paths. Each failure is a 401 whose
message says what was wrong (expired, revoked, invalid), as the published server does for
authenticated callers. The principal is also left on the Django request for the audit log.
"""

import uuid
from datetime import timedelta

from django.db.models import Exists, OuterRef
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from apps.accounts.models import ApplicationToken, RefreshToken, User
from apps.accounts.principal import (
    Principal,
    principal_for_token,
    principal_for_user,
    roles_for_token,
    roles_from_flags,
    team_role_flags,
)
from apps.accounts.tokens import APP_TOKEN_PREFIX, TokenError, decode_access_token, token_hash

# last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def authenticate_app_token(raw: str) -> Principal:
    """One query: the token, its creator and the creator's team roles."""
    token = (
        ApplicationToken.objects.select_related("created_by")
        .annotate(**team_role_flags("created_by_id"))
        .filter(token_hash=token_hash(raw))
        .first()
    )
    if token is None:
        raise TokenError("Invalid application token")
    if token.revoked_at is not None:
        raise TokenError("Application token revoked")
    now = timezone.now()
    if token.expires_at <= now:
        raise TokenError("Application token expired")
    if not token.created_by.is_active:
        raise TokenError("Application token creator is deactivated")
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApplicationToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    creator_roles = roles_from_flags(
        is_active=True, owner=token.holds_team_owner, member=token.holds_team_membership
    )
    return principal_for_token(token, roles=roles_for_token(creator_roles))


def authenticate_access_token(raw: str) -> Principal:
    """One query after the signature check: the user, whether the session is live, the roles."""
    claims = decode_access_token(raw)
    try:
        session_family = uuid.UUID(claims.session_id)
    except ValueError:
        raise TokenError("Invalid access token") from None
    live_session = RefreshToken.objects.filter(
        family=session_family, user_id=OuterRef("pk"), revoked_at__isnull=True
    )
    user = (
        User.objects.annotate(session_live=Exists(live_session), **team_role_flags("pk"))
        .filter(pk=claims.user_id, is_active=True)
        .first()
    )
    if user is None:
        raise TokenError("Invalid access token")
    if not user.session_live:
        raise TokenError("Session has been revoked")
    roles = roles_from_flags(
        is_active=True, owner=user.holds_team_owner, member=user.holds_team_membership
    )
    return principal_for_user(user, session_id=claims.session_id, roles=roles)


def authenticate_bearer(raw: str) -> Principal:
    if raw.startswith(APP_TOKEN_PREFIX):
        return authenticate_app_token(raw)
    return authenticate_access_token(raw)


class BearerAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header:
            return None
        if header[0].lower() != b"bearer":
            raise exceptions.AuthenticationFailed("Authorization must use the Bearer scheme")
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid Authorization header")
        try:
            raw = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid Authorization header") from None
        try:
            principal = authenticate_bearer(raw)
        except TokenError as error:
            raise exceptions.AuthenticationFailed(str(error)) from None
        django_request = request._request
        django_request.sfp_principal = principal
        django_request.actor_label = principal.label
        return principal.user, principal

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="sfp"'
