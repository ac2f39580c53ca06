"""Reads of the accounts app: user and membership listings, DTO shapes and audit queries."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from apps.accounts.models import AuditEvent, Membership, Team, TeamRole, User
from apps.accounts.principal import user_roles
from apps.core.exceptions import NotFound
from apps.core.pagination import Keyset, keyset_page


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
        role = TeamRole.OWNER if TeamRole.OWNER in roles else (TeamRole.MEMBER if roles else None)
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


# Newest first; the index audit_keyset (occurred_at, id) bounds every page.
AUDIT_KEYSET = Keyset("occurred_at", "id")


def encode_cursor(event: AuditEvent) -> str:
    return AUDIT_KEYSET.encode(event)


def audit_events_filtered(filters: AuditFilters) -> QuerySet[AuditEvent]:
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
    return events


def audit_events(
    filters: AuditFilters, *, cursor: str | None = None, limit: int = 100
) -> tuple[list[AuditEvent], str | None]:
    """Newest first, keyset-paginated on (occurred_at, id) by a row-value comparison: stable
    while rows keep arriving, and a deep page costs what the first does."""
    page = keyset_page(audit_events_filtered(filters), AUDIT_KEYSET, cursor=cursor, limit=limit)
    return page.items, page.next_cursor


def audit_events_total(filters: AuditFilters) -> int:
    """The exact count, asked for with count=true: a scan of every matching row."""
    return audit_events_filtered(filters).count()


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
