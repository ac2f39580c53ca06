"""Writes of the accounts app: teams, memberships, users, application tokens and sessions.

Every function is keyword-only, checks the rules of the documented team model itself (so the
API, the admin and commands cannot bypass them), and records its audit event in the same
transaction as the change. The rules:

- a team's creator becomes its owner; a team always keeps at least one owner;
- the last team cannot be deleted; only a team's owners manage its members and roles;
- nobody raises their own role; a token is never more than its creator is now.
"""

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import login as auth_login
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.text import slugify

from apps.accounts.audit import audit_event
from apps.accounts.models import (
    ApplicationToken,
    AuditEvent,
    Membership,
    RefreshToken,
    Role,
    Team,
    TeamRole,
    User,
)
from apps.accounts.principal import Principal, principal_for_user
from apps.accounts.selectors import user_by_email
from apps.accounts.sso.models import SsoDomain
from apps.accounts.tokens import (
    issue_access_token,
    new_app_token,
    new_refresh_token,
    token_hash,
)
from apps.core.exceptions import Conflict, Forbidden, InvalidRequest, NotFound
from apps.core.permissions import requires_role_message
from apps.core.request_context import client_ip

_TEAM_ROLE_RANK = {TeamRole.MEMBER: 1, TeamRole.OWNER: 2}


class LoginThrottled(Exception):
    """Too many failed logins for an email or a client IP; `retry_after` in seconds."""

    def __init__(self, retry_after: int):
        super().__init__("Too many failed login attempts; try again later")
        self.retry_after = retry_after


class LoginFailed(Exception):
    """Wrong email or password, or a user with no role: one message for all, to leak nothing."""


# --- helpers --------------------------------------------------------------------------------


def _membership_snapshot(membership: Membership) -> dict:
    return {"team": membership.team.slug, "email": membership.user.email, "role": membership.role}


def _require_user_principal(actor: Principal) -> None:
    if actor.is_token:
        raise Forbidden(requires_role_message([Role.OWNER]))


def _require_team_owner(actor: Principal, team: Team) -> None:
    _require_user_principal(actor)
    is_owner = Membership.objects.filter(
        team=team, user=actor.user, role=TeamRole.OWNER, user__is_active=True
    ).exists()
    if not is_owner:
        raise Forbidden(requires_role_message([Role.OWNER]))


def _ensure_another_owner_remains(team: Team, leaving: User) -> None:
    """Refuse when `leaving` is the team's only owner (rows locked against a concurrent change)."""
    owners = list(
        Membership.objects.select_for_update()
        .filter(team=team, role=TeamRole.OWNER)
        .values_list("user_id", flat=True)
    )
    if owners == [leaving.pk]:
        raise InvalidRequest(f"Team {team.slug} must keep at least one owner")


def _validate_password(password: str, user: User | None = None) -> None:
    try:
        password_validation.validate_password(password, user)
    except DjangoValidationError as error:
        raise InvalidRequest(
            "Password is too weak: " + " ".join(error.messages),
            details={"password": error.messages},
        ) from None


# --- bootstrap ------------------------------------------------------------------------------


@dataclass
class OwnerBootstrap:
    user: User
    team: Team
    generated_password: str | None
    created_user: bool


@transaction.atomic
def owner_bootstrap(
    *,
    email: str,
    password: str | None = None,
    team_slug: str = "default",
    team_name: str = "Default",
) -> OwnerBootstrap:
    """Make `email` an owner of the first team (creating both when missing): `createowner`."""
    generated = None
    if not password:
        generated = password = secrets.token_urlsafe(18)
    user = User.objects.filter(email__iexact=email).first()
    created_user = user is None
    if created_user:
        user = User.objects.create_user(email=email, password=password)
    elif generated is None:
        user.set_password(password)
        user.save(update_fields=["password"])
    else:
        generated = None  # an existing user keeps the password they have
    team = Team.objects.order_by("created_at").first()
    if team is None:
        team = Team.objects.create(slug=team_slug, name=team_name)
    membership, _ = Membership.objects.get_or_create(team=team, user=user)
    before = membership.role
    membership.role = TeamRole.OWNER
    membership.save(update_fields=["role", "updated_at"])
    audit_event(
        "owner.bootstrapped",
        target_type="membership",
        target_id=f"{team.slug}:{user.email}",
        before={"role": before} if not created_user else None,
        after=_membership_snapshot(membership),
    )
    return OwnerBootstrap(
        user=user, team=team, generated_password=generated, created_user=created_user
    )


def owner_exists() -> bool:
    return Membership.objects.filter(role=TeamRole.OWNER, user__is_active=True).exists()


# --- teams ----------------------------------------------------------------------------------


@transaction.atomic
def team_create(
    *, actor: Principal, slug: str, name: str, description: str = "", request=None
) -> Team:
    _require_user_principal(actor)
    if slugify(slug) != slug:
        raise InvalidRequest(
            "slug must be lower-case letters, digits and hyphens",
            details={"slug": ["Use lower-case letters, digits and hyphens."]},
        )
    if Team.objects.filter(slug=slug).exists():
        raise Conflict(f"Team {slug} already exists")
    try:
        with transaction.atomic():
            team = Team.objects.create(slug=slug, name=name, description=description)
    except IntegrityError:
        raise Conflict(f"Team {slug} already exists") from None
    membership = Membership.objects.create(team=team, user=actor.user, role=TeamRole.OWNER)
    audit_event(
        "team.created",
        principal=actor,
        request=request,
        target_type="team",
        target_id=slug,
        after={"slug": slug, "name": name, "owner": actor.user.email},
    )
    audit_event(
        "member.added",
        principal=actor,
        request=request,
        target_type="membership",
        target_id=f"{slug}:{actor.user.email}",
        after=_membership_snapshot(membership),
    )
    return team


@transaction.atomic
def team_delete(*, actor: Principal, team: Team, request=None) -> None:
    _require_team_owner(actor, team)
    if len(Team.objects.select_for_update().values_list("pk", flat=True)) <= 1:
        raise InvalidRequest("The last team cannot be deleted")
    snapshot = {"slug": team.slug, "name": team.name, "members": team.memberships.count()}
    team.delete()
    audit_event(
        "team.deleted",
        principal=actor,
        request=request,
        target_type="team",
        target_id=snapshot["slug"],
        before=snapshot,
    )


# --- memberships ----------------------------------------------------------------------------


@transaction.atomic
def membership_add(
    *, actor: Principal, team: Team, email: str, role: str = TeamRole.MEMBER, request=None
) -> Membership:
    _require_team_owner(actor, team)
    user = user_by_email(email)
    if Membership.objects.filter(team=team, user=user).exists():
        raise Conflict(f"{user.email} is already a member of {team.slug}")
    membership = Membership.objects.create(team=team, user=user, role=role)
    audit_event(
        "member.added",
        principal=actor,
        request=request,
        target_type="membership",
        target_id=f"{team.slug}:{user.email}",
        after=_membership_snapshot(membership),
    )
    return membership


@transaction.atomic
def membership_remove(*, actor: Principal, team: Team, email: str, request=None) -> None:
    user = user_by_email(email)
    if not (not actor.is_token and actor.user.pk == user.pk):
        _require_team_owner(actor, team)  # leaving yourself needs no ownership
    membership = Membership.objects.filter(team=team, user=user).first()
    if membership is None:
        raise NotFound(f"{user.email} is not a member of {team.slug}")
    if membership.role == TeamRole.OWNER:
        _ensure_another_owner_remains(team, user)
    snapshot = _membership_snapshot(membership)
    membership.delete()
    audit_event(
        "member.removed",
        principal=actor,
        request=request,
        target_type="membership",
        target_id=f"{team.slug}:{user.email}",
        before=snapshot,
    )


@transaction.atomic
def membership_set_role(
    *, actor: Principal, team: Team, email: str, role: str, request=None
) -> Membership:
    user = user_by_email(email)
    membership = Membership.objects.select_for_update().filter(team=team, user=user).first()
    if not actor.is_token and actor.user.pk == user.pk:
        current = membership.role if membership else None
        if current is None or _TEAM_ROLE_RANK[role] > _TEAM_ROLE_RANK[current]:
            raise Forbidden("You cannot raise your own role")
    _require_team_owner(actor, team)
    if membership is None:
        raise NotFound(f"{user.email} is not a member of {team.slug}")
    if membership.role == role:
        return membership
    if membership.role == TeamRole.OWNER:
        _ensure_another_owner_remains(team, user)
    before = _membership_snapshot(membership)
    membership.role = role
    membership.save(update_fields=["role", "updated_at"])
    audit_event(
        "role.changed",
        principal=actor,
        request=request,
        target_type="membership",
        target_id=f"{team.slug}:{user.email}",
        before=before,
        after=_membership_snapshot(membership),
    )
    return membership


# --- users ----------------------------------------------------------------------------------


@transaction.atomic
def user_provision(
    *,
    actor: Principal,
    email: str,
    first_name: str = "",
    last_name: str = "",
    team: Team,
    role: str = TeamRole.MEMBER,
    password: str | None = None,
    request=None,
) -> User:
    _require_team_owner(actor, team)
    if User.objects.filter(email__iexact=email).exists():
        raise Conflict(f"User {email} already exists")
    if password:
        _validate_password(password, User(email=email, first_name=first_name, last_name=last_name))
    user = User.objects.create_user(
        email=email, password=password or None, first_name=first_name, last_name=last_name
    )
    membership = Membership.objects.create(team=team, user=user, role=role)
    audit_event(
        "user.created",
        principal=actor,
        request=request,
        target_type="user",
        target_id=user.email,
        after={"email": user.email, "firstName": first_name, "lastName": last_name},
    )
    audit_event(
        "member.added",
        principal=actor,
        request=request,
        target_type="membership",
        target_id=f"{team.slug}:{user.email}",
        after=_membership_snapshot(membership),
    )
    return user


@transaction.atomic
def user_update(
    *,
    actor: Principal,
    user: User,
    first_name: str | None = None,
    last_name: str | None = None,
    role: str | None = None,
    team: Team | None = None,
    request=None,
) -> User:
    # A token acts for its creator (never beyond them), so the creator's own profile is "self".
    is_self = actor.user.pk == user.pk
    if not is_self and Role.OWNER not in actor.roles:
        raise Forbidden(requires_role_message([Role.OWNER]))
    if role is not None:
        if team is None:
            raise InvalidRequest(
                "team is required to change a role", details={"team": ["Required with role."]}
            )
        membership_set_role(actor=actor, team=team, email=user.email, role=role, request=request)
    changes = {
        field: value
        for field, value in (("first_name", first_name), ("last_name", last_name))
        if value is not None and getattr(user, field) != value
    }
    if changes:
        before = {field: getattr(user, field) for field in changes}
        for field, value in changes.items():
            setattr(user, field, value)
        user.save(update_fields=list(changes))
        audit_event(
            "user.updated",
            principal=actor,
            request=request,
            target_type="user",
            target_id=user.email,
            before=before,
            after=changes,
        )
    return user


@transaction.atomic
def user_delete(*, actor: Principal, user: User, request=None) -> None:
    _require_user_principal(actor)
    for membership in user.memberships.select_related("team").filter(role=TeamRole.OWNER):
        _ensure_another_owner_remains(membership.team, user)
    snapshot = {
        "email": user.email,
        "teams": {m.team.slug: m.role for m in user.memberships.select_related("team")},
    }
    user.delete()
    audit_event(
        "user.deleted",
        principal=actor,
        request=request,
        target_type="user",
        target_id=snapshot["email"],
        before=snapshot,
    )


# --- application tokens ---------------------------------------------------------------------


@transaction.atomic
def app_token_create(
    *, actor: Principal, name: str, expires_in_days: int, request=None
) -> tuple[ApplicationToken, str]:
    """Create a token; the plaintext is returned here once and never stored."""
    _require_user_principal(actor)
    if not 1 <= expires_in_days <= settings.SFP_APP_TOKEN_MAX_DAYS:
        raise InvalidRequest(
            f"expiresIn must be between 1 and {settings.SFP_APP_TOKEN_MAX_DAYS} days",
            details={"expiresIn": [f"Between 1 and {settings.SFP_APP_TOKEN_MAX_DAYS}."]},
        )
    raw = new_app_token()
    token = ApplicationToken.objects.create(
        name=name,
        token_hash=token_hash(raw),
        last4=raw[-4:],
        created_by=actor.user,
        expires_at=timezone.now() + timedelta(days=expires_in_days),
    )
    audit_event(
        "token.created",
        principal=actor,
        request=request,
        target_type="application_token",
        target_id=token.pk,
        after={"name": name, "expiresAt": token.expires_at.isoformat(), "last4": token.last4},
    )
    return token, raw


@transaction.atomic
def app_token_revoke(*, actor: Principal, token_id: str, request=None) -> ApplicationToken:
    _require_user_principal(actor)
    token = ApplicationToken.objects.select_for_update().filter(pk=token_id).first()
    if token is None:
        raise NotFound(f"Application token {token_id} not found")
    if token.revoked_at is not None:
        return token
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_event(
        "token.revoked",
        principal=actor,
        request=request,
        target_type="application_token",
        target_id=token.pk,
        before={"status": "active"},
        after={"status": "revoked", "name": token.name},
    )
    return token


# --- sessions -------------------------------------------------------------------------------


@dataclass
class SessionTokens:
    user: User
    access_token: str
    refresh_token: str
    expires_at: object


def _start_session(user: User, family: uuid.UUID) -> SessionTokens:
    raw_refresh = new_refresh_token()
    RefreshToken.objects.create(
        user=user,
        family=family,
        token_hash=token_hash(raw_refresh),
        expires_at=timezone.now() + timedelta(days=settings.SFP_REFRESH_TOKEN_TTL_DAYS),
    )
    access, expires_at = issue_access_token(user, session_id=str(family))
    return SessionTokens(
        user=user, access_token=access, refresh_token=raw_refresh, expires_at=expires_at
    )


def _login_email(email: str) -> str:
    """The form logins are counted under (throttling reads `login.*` audit rows by it)."""
    return email.strip().lower()


def _check_login_throttle(email: str, ip: str | None) -> None:
    window = timedelta(seconds=settings.SFP_LOGIN_WINDOW_SECONDS)
    since = timezone.now() - window
    last_success = (
        AuditEvent.objects.filter(action="login.succeeded", target_id=email, occurred_at__gte=since)
        .order_by("-occurred_at")
        .values_list("occurred_at", flat=True)
        .first()
    )
    email_failures = AuditEvent.objects.filter(
        action="login.failed", target_id=email, occurred_at__gte=last_success or since
    ).count()
    ip_failures = (
        AuditEvent.objects.filter(
            action="login.failed", client_ip=ip, occurred_at__gte=since
        ).count()
        if ip
        else 0
    )
    if (
        email_failures >= settings.SFP_LOGIN_MAX_FAILURES_PER_EMAIL
        or ip_failures >= settings.SFP_LOGIN_MAX_FAILURES_PER_IP
    ):
        raise LoginThrottled(retry_after=settings.SFP_LOGIN_WINDOW_SECONDS)


def credentials_verify(*, email: str, password: str, request: HttpRequest) -> User:
    """Email + password → the user, for every way of logging in (API session, dashboard).

    Throttled per email and client IP; refuses users with no team membership. Failures are
    audited (and counted for throttling) outside any transaction, so they persist although the
    login is refused. The caller records `login.succeeded` with the session it starts."""
    email = _login_email(email)
    _check_login_throttle(email, client_ip(request))
    user = User.objects.filter(email__iexact=email, is_active=True).first()
    valid = user is not None and user.check_password(password) and user.memberships.exists()
    if not valid:
        if user is None:
            User().set_password(password)  # same hashing cost whether or not the user exists
        audit_event("login.failed", request=request, target_type="user", target_id=email)
        raise LoginFailed("Invalid credentials or insufficient permissions")
    if _sso_required_for(user):
        audit_event(
            "login.failed",
            request=request,
            target_type="user",
            target_id=email,
            after={"method": "password", "reason": "SSO is required for this domain"},
        )
        raise LoginFailed("Sign in with your organisation's single sign-on")
    return user


def _sso_required_for(user: User) -> bool:
    """An owner may still use the password (break glass) when the IdP is unreachable."""
    domain = user.email.rpartition("@")[2].lower()
    if not SsoDomain.objects.filter(domain=domain, sso_required=True).exists():
        return False
    return not user.memberships.filter(role=TeamRole.OWNER).exists()


def _audit_login_succeeded(user: User, email: str, request: HttpRequest, **fields) -> None:
    audit_event(
        "login.succeeded",
        principal=principal_for_user(user),
        request=request,
        target_type="user",
        target_id=_login_email(email),
        **fields,
    )


def session_login(*, email: str, password: str, request: HttpRequest) -> SessionTokens:
    """Email + password → a new API session (access and refresh tokens)."""
    user = credentials_verify(email=email, password=password, request=request)
    with transaction.atomic():
        tokens = _start_session(user, uuid.uuid4())
        user.last_login = timezone.now()
        user.save(update_fields=["last_login"])
        _audit_login_succeeded(user, email, request)
    return tokens


def browser_login(*, email: str, password: str, request: HttpRequest) -> User:
    """Email + password → a Django session cookie (the dashboard; it also authenticates the
    dashboard's WebSocket). Same checks, throttling and audit as `session_login`."""
    user = credentials_verify(email=email, password=password, request=request)
    with transaction.atomic():
        auth_login(request, user)  # a new session key; sets last_login
        _audit_login_succeeded(user, email, request, after={"session": "browser"})
    return user


class RefreshFailed(Exception):
    """The refresh token cannot be used; the message says why."""


def session_refresh(*, raw_refresh: str, request: HttpRequest) -> SessionTokens:
    """Rotate a refresh token. Presenting one already rotated revokes its whole session."""
    with transaction.atomic():
        stored = (
            RefreshToken.objects.select_for_update()
            .select_related("user")
            .filter(token_hash=token_hash(raw_refresh))
            .first()
        )
        if stored is None:
            raise RefreshFailed("Invalid refresh token")
        now = timezone.now()
        if stored.rotated_at is None:
            if stored.revoked_at is not None:
                raise RefreshFailed("Refresh token revoked")
            if stored.expires_at <= now:
                raise RefreshFailed("Refresh token expired")
            if not stored.user.is_active:
                raise RefreshFailed("Invalid refresh token")
            # The rotated token is also revoked: exactly one live token per session.
            RefreshToken.objects.filter(pk=stored.pk).update(rotated_at=now, revoked_at=now)
            return _start_session(stored.user, stored.family)
        # A rotated token presented again: someone else may hold the session. End it (committed).
        RefreshToken.objects.filter(family=stored.family, revoked_at__isnull=True).update(
            revoked_at=now
        )
        audit_event(
            "session.reuse_detected",
            principal=principal_for_user(stored.user),
            request=request,
            target_type="session",
            target_id=str(stored.family),
        )
    raise RefreshFailed("Refresh token already used; the session has been revoked")


@transaction.atomic
def session_logout(*, raw_refresh: str, request: HttpRequest) -> None:
    stored = (
        RefreshToken.objects.select_related("user")
        .filter(token_hash=token_hash(raw_refresh))
        .first()
    )
    if stored is None:
        raise RefreshFailed("Invalid refresh token")
    RefreshToken.objects.filter(family=stored.family, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    audit_event(
        "session.revoked",
        principal=principal_for_user(stored.user),
        request=request,
        target_type="session",
        target_id=str(stored.family),
    )
