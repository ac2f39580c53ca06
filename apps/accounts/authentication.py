"""DRF authentication: `Authorization: Bearer <user JWT | application token>` → a Principal.

Application tokens (`sfp_app_…`) and user JWTs take separate paths. Each failure is a 401 whose
message says what was wrong (expired, revoked, invalid), as the published server does for
authenticated callers. The principal is also left on the Django request for the audit log.
"""

from datetime import timedelta

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from apps.accounts.models import ApplicationToken, RefreshToken, User
from apps.accounts.principal import Principal, principal_for_token, principal_for_user
from apps.accounts.tokens import APP_TOKEN_PREFIX, TokenError, decode_access_token, token_hash

# last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def authenticate_app_token(raw: str) -> Principal:
    token = (
        ApplicationToken.objects.select_related("created_by")
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
    return principal_for_token(token)


def authenticate_access_token(raw: str) -> Principal:
    claims = decode_access_token(raw)
    user = User.objects.filter(pk=claims.user_id, is_active=True).first()
    if user is None:
        raise TokenError("Invalid access token")
    session_live = RefreshToken.objects.filter(
        family=claims.session_id, user=user, revoked_at__isnull=True
    ).exists()
    if not session_live:
        raise TokenError("Session has been revoked")
    return principal_for_user(user, session_id=claims.session_id)


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
