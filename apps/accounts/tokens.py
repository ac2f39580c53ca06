"""Credentials the server issues: session JWTs, refresh tokens and application tokens.

Access tokens are short-lived HS256 JWTs with issuer, audience, expiry and a session id (`sid`);
refresh tokens and application tokens are random strings of which only an HMAC-SHA256 is stored.
Nothing here writes to the database except through the functions that say so.
"""

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from django.conf import settings
from django.utils import timezone

from apps.accounts.models import User

APP_TOKEN_PREFIX = "sfp_app_"  # noqa: S105 - a prefix, not a secret
REFRESH_TOKEN_PREFIX = "sfp_rt_"  # noqa: S105


class TokenError(Exception):
    """A presented credential is not acceptable; the message says why, for a 401."""


def _derived_key(purpose: str) -> bytes:
    return hashlib.sha256(f"sfp-server:{purpose}:{settings.SECRET_KEY}".encode()).digest()


def token_hash(raw: str) -> str:
    """The stored form of an application or refresh token."""
    return hmac.new(_derived_key("token-hash"), raw.encode(), hashlib.sha256).hexdigest()


def new_app_token() -> str:
    return APP_TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_refresh_token() -> str:
    return REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)


def _jwt_key() -> bytes:
    return settings.SFP_JWT_SECRET.encode() if settings.SFP_JWT_SECRET else _derived_key("jwt")


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    email: str
    session_id: str
    expires_at: datetime


def issue_access_token(user: User, *, session_id: str) -> tuple[str, datetime]:
    now = timezone.now()
    expires_at = now + timedelta(seconds=settings.SFP_ACCESS_TOKEN_TTL_SECONDS)
    claims = {
        "iss": settings.SFP_JWT_ISSUER,
        "aud": settings.SFP_JWT_AUDIENCE,
        "sub": str(user.pk),
        "email": user.email,
        "sid": session_id,
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, _jwt_key(), algorithm="HS256"), expires_at


def decode_access_token(raw: str) -> AccessClaims:
    """Verify signature, issuer, audience and expiry; raise TokenError with a precise message."""
    try:
        claims = jwt.decode(
            raw,
            _jwt_key(),
            algorithms=["HS256"],
            audience=settings.SFP_JWT_AUDIENCE,
            issuer=settings.SFP_JWT_ISSUER,
            options={"require": ["exp", "iat", "sub", "iss", "aud", "sid"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("Access token expired") from None
    except jwt.PyJWTError:
        raise TokenError("Invalid access token") from None
    if claims.get("typ") != "access":
        raise TokenError("Invalid access token")
    try:
        user_id = uuid.UUID(claims["sub"])
    except ValueError:
        raise TokenError("Invalid access token") from None
    return AccessClaims(
        user_id=user_id,
        email=claims.get("email", ""),
        session_id=str(claims["sid"]),
        expires_at=datetime.fromtimestamp(claims["exp"], tz=UTC),
    )
