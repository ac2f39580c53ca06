"""Roles as code: the enum is the only spelling of a role, and each policy answers as declared."""

import ast
from pathlib import Path

import pytest

from apps.accounts.models import ApplicationToken, Role, User
from apps.accounts.principal import Principal
from apps.accounts.roles import (
    holds_any,
    is_human_owner,
    is_privileged,
    require_any,
    require_human_owner,
)
from apps.core.exceptions import Forbidden

ROOT = Path(__file__).resolve().parents[2]
ROLE_NAMES = set(Role.values)
# Where a role name may be spelled as a string: its enum, and migrations frozen at their time.
DECLARED_IN = {Path("apps/accounts/models.py")}


def _role_literals(path: Path) -> list[int]:
    """Lines of `path` holding a bare role name as a string literal (dict keys of payloads that
    merely share the word, such as GitHub's `"owner"` object, are passed as subscripts/gets)."""
    tree = ast.parse(path.read_text())
    exempt = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "get" and node.args:
            exempt.add(id(node.args[0]))
        if isinstance(node, ast.Dict):
            exempt.update(id(key) for key in node.keys if key is not None)
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in ROLE_NAMES and id(node) not in exempt
    ]


def test_role_names_are_spelled_only_by_the_enum():
    found = {}
    for path in (ROOT / "apps").rglob("*.py"):
        relative = path.relative_to(ROOT)
        if "migrations" in path.parts or relative in DECLARED_IN:
            continue
        if lines := _role_literals(path):
            found[str(relative)] = lines
    assert not found, f"role names as string literals (use apps.accounts.roles): {found}"


def _principal(*roles: str, token: bool = False) -> Principal:
    user = User(email="someone@example.com")
    return Principal(
        user=user,
        roles=frozenset(roles),
        token=ApplicationToken(name="ci", created_by=user) if token else None,
    )


@pytest.mark.parametrize(
    ("principal", "privileged", "human_owner"),
    [
        (_principal(Role.OWNER, Role.MEMBER), True, True),
        (_principal(Role.MEMBER), False, False),
        (_principal(Role.APPLICATION, token=True), True, False),
        (_principal(Role.OWNER, token=True), True, False),
        (_principal(), False, False),
        (None, False, False),
    ],
)
def test_policies(principal, privileged, human_owner):
    assert is_privileged(principal) is privileged
    assert is_human_owner(principal) is human_owner


def test_require_any_refuses_with_the_published_message():
    with pytest.raises(Forbidden) as refused:
        require_any(_principal(Role.MEMBER), (Role.OWNER, Role.APPLICATION), why="a release")
    assert refused.value.message == "Forbidden - Requires role: owner, application (a release)"
    require_any(_principal(Role.APPLICATION, token=True), (Role.OWNER, Role.APPLICATION))
    assert holds_any(_principal(Role.MEMBER), [Role.MEMBER])


def test_require_human_owner_refuses_tokens_even_of_owners():
    with pytest.raises(Forbidden) as refused:
        require_human_owner(_principal(Role.OWNER, token=True))
    assert refused.value.message == "Forbidden - Requires role: owner"
    require_human_owner(_principal(Role.OWNER))
