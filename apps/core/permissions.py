"""Authorisation declared once per view: `allowed_roles`, checked by `DeclaredRoles`.

Every API view states which roles may call it, as a tuple of role names or a dict of them per
HTTP method, or `PUBLIC` for the few endpoints anonymous callers may use. A view that declares
nothing is refused (fail closed), and a test walks every URL pattern to catch it before that.

The authenticated principal (`request.auth`) carries the caller's roles as loaded for *this*
request, so a role change applies from the next request. A denied call answers 403 with exactly
`Forbidden - Requires role: <roles>`, as the published API does; an anonymous one answers 401.

A method the view does not implement answers 405 with `Allow` before any role is looked up (DRF
checks permissions before it looks for the handler, so without this an undeclared method was a
missing declaration: a 500). `OPTIONS` is allowed to whoever may call any method of the view.
"""

from collections.abc import Iterable

from django.core.exceptions import ImproperlyConfigured
from rest_framework import exceptions
from rest_framework.permissions import BasePermission

PUBLIC = "public"


def requires_role_message(roles: Iterable[str]) -> str:
    return "Forbidden - Requires role: " + ", ".join(roles)


def declared_roles(view, method: str) -> tuple[str, ...] | str:
    """The roles `view` allows for `method`, or PUBLIC; raises when the view declares nothing."""
    declaration = getattr(view, "allowed_roles", None)
    if isinstance(declaration, dict):
        by_method = declaration
        declaration = by_method.get(method.upper())
        if declaration is None and method.upper() in ("HEAD", "OPTIONS"):
            declaration = by_method.get("GET")
        if declaration is None and method.upper() == "OPTIONS" and by_method:
            declared = list(by_method.values())
            declaration = (
                PUBLIC
                if PUBLIC in declared
                else tuple(dict.fromkeys(role for roles in declared for role in roles))
            )
    if declaration is None:
        raise ImproperlyConfigured(f"{type(view).__name__} declares no allowed_roles for {method}")
    return declaration


class DeclaredRoles(BasePermission):
    def has_permission(self, request, view) -> bool:
        handler = request.method.lower()
        if handler not in view.http_method_names or not hasattr(view, handler):
            raise exceptions.MethodNotAllowed(request.method)
        roles = declared_roles(view, request.method)
        if roles == PUBLIC:
            return True
        principal = request.auth
        if principal is None:
            raise exceptions.NotAuthenticated("Authentication required")
        if not set(roles) & set(principal.roles):
            raise exceptions.PermissionDenied(requires_role_message(roles))
        return True
