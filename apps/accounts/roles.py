"""The organisation's roles and every rule that reads them, declared once.

`Role` is the enum (stored on memberships; `application` is an application token's role). The
role groups below are what views put in `allowed_roles`, and the policy functions are the one
place a rule lives: views, services, the live socket and the dashboard all call the same one, so
a rule cannot drift between the check at the edge and the check in the service behind it.
"""

from collections.abc import Iterable

from apps.accounts.models import Role
from apps.core.exceptions import Forbidden
from apps.core.permissions import requires_role_message

__all__ = [
    "ANY_ROLE",
    "DASHBOARD_ROLES",
    "LOG_READERS",
    "OWNER",
    "PRIVILEGED",
    "Role",
    "holds_any",
    "is_human_owner",
    "is_privileged",
    "require_any",
    "require_human_owner",
]

ANY_ROLE = (Role.OWNER, Role.MEMBER, Role.APPLICATION)
OWNER = (Role.OWNER,)
# Owners and application tokens: release environments, deployments, credentials, anyone's lock.
PRIVILEGED = (Role.OWNER, Role.APPLICATION)
# As published: an owner reads logs through the member role it also holds.
LOG_READERS = (Role.MEMBER, Role.APPLICATION)
# The console and dashboard are for people, never for application tokens.
DASHBOARD_ROLES = (Role.OWNER, Role.MEMBER)


def holds_any(principal, roles: Iterable[str]) -> bool:
    """Whether `principal` holds at least one of `roles` for this request."""
    return principal is not None and not set(principal.roles).isdisjoint(roles)


def require_any(principal, roles: Iterable[str], *, why: str = "") -> None:
    """Refuse (403, the published message) unless `principal` holds one of `roles`."""
    roles = tuple(roles)
    if not holds_any(principal, roles):
        raise Forbidden(requires_role_message(roles) + (f" ({why})" if why else ""))


def is_privileged(principal) -> bool:
    """An owner or an application token: may act on anyone's task or lock."""
    return holds_any(principal, PRIVILEGED)


def is_human_owner(principal) -> bool:
    """An owner signed in as a person (not through a token): gates, force releases, settings."""
    return principal is not None and not principal.is_token and Role.OWNER in principal.roles


def require_human_owner(principal) -> None:
    if not is_human_owner(principal):
        raise Forbidden(requires_role_message(OWNER))
