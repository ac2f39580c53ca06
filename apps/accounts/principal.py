"""Who is calling, with the roles they hold for this request.

A principal is built by authentication from the database on every request: a user's roles from
their memberships, an application token's from its creator's *current* roles. Nothing is cached
across requests, so role changes, demotions and removals apply from the next request.
"""

from dataclasses import dataclass

from apps.accounts.models import ApplicationToken, Role, TeamRole, User


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


def user_roles(user: User) -> frozenset[str]:
    """Organisation roles of a user: an owner also holds member (the role hierarchy)."""
    if not user.is_active:
        return frozenset()
    team_roles = set(user.memberships.values_list("role", flat=True))
    if TeamRole.OWNER in team_roles:
        return frozenset({Role.OWNER.value, Role.MEMBER.value})
    if TeamRole.MEMBER in team_roles:
        return frozenset({Role.MEMBER.value})
    return frozenset()


def token_roles(token: ApplicationToken) -> frozenset[str]:
    """A token acts as `application` while its creator is an owner, and never beyond the creator:
    a creator demoted to member caps it at member; one with no role left leaves it none."""
    creator = user_roles(token.created_by)
    if Role.OWNER in creator:
        return frozenset({Role.APPLICATION.value})
    return creator


def principal_for_user(user: User, *, session_id: str | None = None) -> Principal:
    return Principal(user=user, roles=user_roles(user), session_id=session_id)


def principal_for_token(token: ApplicationToken) -> Principal:
    return Principal(user=token.created_by, roles=token_roles(token), token=token)
