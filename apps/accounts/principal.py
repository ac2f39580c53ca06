"""Who is calling, with the roles they hold for this request.

A principal is built by authentication from the database on every request: a user's roles from
their memberships, an application token's from its creator's *current* roles. Nothing is cached
across requests, so role changes, demotions and removals apply from the next request.
Authentication reads the roles in the same query as the credential (`team_role_flags`), so one
round trip establishes who is calling and what they may do.
"""

from dataclasses import dataclass

from django.db.models import Exists, OuterRef

from apps.accounts.models import ApplicationToken, Membership, Role, TeamRole, User


@dataclass(frozen=True)
class Principal:
    user: User
    roles: frozenset[str]
    token: ApplicationToken | None = None
    session_id: str | None = None

    @property
    def is_token(self) -> bool:
        return self.token is not None

    @property
    def primary_role(self) -> str:
        for role in (Role.APPLICATION, Role.OWNER, Role.MEMBER):
            if role in self.roles:
                return role.value
        return ""

    @property
    def label(self) -> str:
        return f"token:{self.token.pk}" if self.token else f"user:{self.user.pk}"


def team_role_flags(user_ref: str) -> dict[str, Exists]:
    """Annotations saying whether the user at `user_ref` owns a team or belongs to one, so a
    credential lookup returns its roles in the same row (`roles_from_flags`)."""
    memberships = Membership.objects.filter(user_id=OuterRef(user_ref))
    return {
        "holds_team_owner": Exists(memberships.filter(role=TeamRole.OWNER)),
        "holds_team_membership": Exists(memberships),
    }


def roles_from_flags(*, is_active: bool, owner: bool, member: bool) -> frozenset[str]:
    """Organisation roles: an owner also holds member (the role hierarchy); inactive, none."""
    if not is_active:
        return frozenset()
    if owner:
        return frozenset({Role.OWNER.value, Role.MEMBER.value})
    if member:
        return frozenset({Role.MEMBER.value})
    return frozenset()


def user_roles(user: User) -> frozenset[str]:
    """Organisation roles of a user, read from their memberships."""
    if not user.is_active:
        return frozenset()
    team_roles = set(user.memberships.values_list("role", flat=True))
    return roles_from_flags(
        is_active=True, owner=TeamRole.OWNER in team_roles, member=bool(team_roles)
    )


def roles_for_token(creator_roles: frozenset[str]) -> frozenset[str]:
    """A token acts as `application` while its creator is an owner, and never beyond the creator:
    a creator demoted to member caps it at member; one with no role left leaves it none."""
    if Role.OWNER in creator_roles:
        return frozenset({Role.APPLICATION.value})
    return creator_roles


def token_roles(token: ApplicationToken) -> frozenset[str]:
    return roles_for_token(user_roles(token.created_by))


def principal_for_user(
    user: User, *, session_id: str | None = None, roles: frozenset[str] | None = None
) -> Principal:
    """`roles` when the caller already read them with the user (`team_role_flags`)."""
    if roles is None:
        roles = user_roles(user)
    return Principal(user=user, roles=roles, session_id=session_id)


def principal_for_token(
    token: ApplicationToken, *, roles: frozenset[str] | None = None
) -> Principal:
    """`roles` when the caller already read the creator's with the token (`team_role_flags`)."""
    if roles is None:
        roles = token_roles(token)
    return Principal(user=token.created_by, roles=roles, token=token)
