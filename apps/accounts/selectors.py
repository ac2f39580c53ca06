"""Reads of the accounts app: user and membership listings, DTO shapes and audit queries."""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from apps.accounts.models import AuditEvent, Membership, Team, TeamRole, User
from apps.accounts.principal import user_roles
from apps.core.exceptions import InvalidRequest, NotFound


def team_by_slug(slug: str) -> Team:
    team = Team.objects.filter(slug=slug).first()
    if team is None:
        raise NotFound(f"Team {slug} not found")
    return team


def user_by_email(email: str) -> User:
    user = User.objects.filter(email__iexact=email.strip()).first()
    if user is None:
        raise NotFound(f"User {email} not found")
    return user


def users_filtered(*, team: Team | None = None, role: str | None = None) -> QuerySet[User]:
    users = User.objects.all()
    if team is not None:
        users = users.filter(memberships__team=team)
        if role:
            users = users.filter(memberships__team=team, memberships__role=role)
    elif role == TeamRole.OWNER:
        users = users.filter(memberships__role=TeamRole.OWNER)
    elif role == TeamRole.MEMBER:
        users = users.filter(memberships__isnull=False).exclude(memberships__role=TeamRole.OWNER)
    return users.distinct().order_by("email")


def user_dto(user: User, *, team: Team | None = None, full: bool = True) -> dict:
    """The published UserDto. `full=False` is what an owner sees of someone else (no authData)."""
    memberships = list(user.memberships.select_related("team"))
    if team is not None:
        role = next((m.role for m in memberships if m.team_id == team.pk), None)
    else:
        roles = user_roles(user)
        role = "owner" if "owner" in roles else ("member" if roles else None)
    dto = {
        "id": str(user.pk),
        "firstName": user.first_name,
        "lastName": user.last_name,
        "email": user.email,
        "role": role,
        "teams": [m.team.slug for m in memberships],
    }
    if full:
        dto["authData"] = {
            "provider": "email",
            "isActive": user.is_active,
            "createdAt": user.date_joined.isoformat(),
            "lastSignInAt": user.last_login.isoformat() if user.last_login else None,
            "memberships": [{"team": m.team.slug, "role": m.role} for m in memberships],
        }
    return dto


def membership_dto(membership: Membership) -> dict:
    """The published TeamMembershipDto."""
    return {
        "user_id": str(membership.user_id),
        "account_id": str(membership.team_id),
        "email": membership.user.email,
        "first_name": membership.user.first_name,
        "last_name": membership.user.last_name,
        "role": membership.role,
        "created_at": membership.created_at.isoformat(),
    }


def team_members(*, team: Team, role: str | None = None) -> QuerySet[Membership]:
    members = team.memberships.select_related("user").order_by("user__email")
    if role:
        members = members.filter(role=role)
    return members


def is_team_member(user: User, team: Team) -> bool:
    return Membership.objects.filter(team=team, user=user).exists()


# --- audit ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilters:
    actor: str | None = None
    action: str | None = None
    path: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def encode_cursor(event: AuditEvent) -> str:
    raw = json.dumps([event.occurred_at.isoformat(), event.pk]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        occurred_at, pk = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(occurred_at), int(pk)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise InvalidRequest("cursor is not valid", details={"cursor": ["Invalid."]}) from None


def audit_events(
    filters: AuditFilters, *, cursor: str | None = None, limit: int = 100
) -> tuple[list[AuditEvent], str | None]:
    """Newest first, keyset-paginated on (occurred_at, id): stable while rows keep arriving."""
    events = AuditEvent.objects.all()
    if filters.actor:
        events = events.filter(
            Q(actor_email__iexact=filters.actor) | Q(actor_token_id=filters.actor)
        )
    if filters.action:
        events = events.filter(action=filters.action)
    if filters.path:
        events = events.filter(path__startswith=filters.path)
    if filters.since:
        events = events.filter(occurred_at__gte=filters.since)
    if filters.until:
        events = events.filter(occurred_at__lt=filters.until)
    if cursor:
        occurred_at, pk = _decode_cursor(cursor)
        events = events.filter(
            Q(occurred_at__lt=occurred_at) | Q(occurred_at=occurred_at, id__lt=pk)
        )
    page = list(events.order_by("-occurred_at", "-id")[: limit + 1])
    next_cursor = encode_cursor(page[limit - 1]) if len(page) > limit else None
    return page[:limit], next_cursor


def audit_event_dto(event: AuditEvent) -> dict:
    return {
        "id": event.pk,
        "occurredAt": event.occurred_at.isoformat(),
        "action": event.action,
        "actorUserId": str(event.actor_user_id) if event.actor_user_id else None,
        "actorEmail": event.actor_email,
        "actorTokenId": event.actor_token_id or None,
        "actorRole": event.actor_role,
        "method": event.method,
        "path": event.path,
        "operation": event.operation,
        "statusCode": event.status_code,
        "clientIp": event.client_ip,
        "userAgent": event.user_agent,
        "requestId": event.request_id,
        "durationMs": event.duration_ms,
        "targetType": event.target_type,
        "targetId": event.target_id,
        "before": event.before,
        "after": event.after,
    }
