"""`manage.py createowner`: bootstraps the first team and its owner, without prompts."""

import io

import pytest
from django.core.management import CommandError, call_command

from apps.accounts.models import Membership, Team, TeamRole, User

pytestmark = pytest.mark.django_db


def _run(*args, stdin: str | None = None, monkeypatch=None) -> str:
    out = io.StringIO()
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    call_command("createowner", *args, stdout=out)
    return out.getvalue()


def test_creates_first_team_and_owner_with_generated_password(monkeypatch):
    monkeypatch.delenv("SFP_ADMIN_PASSWORD", raising=False)
    output = _run("--email", "Ops@Example.com")
    password = output.split("Generated password (shown only now): ")[1].strip()
    user = User.objects.get(email="ops@example.com")
    assert user.check_password(password)
    team = Team.objects.get()
    assert team.slug == "default"
    assert Membership.objects.get(team=team, user=user).role == TeamRole.OWNER


def test_password_from_stdin_is_never_printed(monkeypatch):
    output = _run(
        "--email", "a@example.com", "--password-stdin", stdin="pw-from-stdin-123\n",
        monkeypatch=monkeypatch,
    )  # fmt: skip
    assert "pw-from-stdin-123" not in output
    assert User.objects.get(email="a@example.com").check_password("pw-from-stdin-123")


def test_empty_stdin_is_refused(monkeypatch):
    with pytest.raises(CommandError, match="no password"):
        _run("--email", "b@example.com", "--password-stdin", stdin="", monkeypatch=monkeypatch)
    assert not User.objects.exists()


def test_if_none_does_nothing_once_an_owner_exists(monkeypatch):
    monkeypatch.setenv("SFP_ADMIN_EMAIL", "first@example.com")
    monkeypatch.setenv("SFP_ADMIN_PASSWORD", "first-owner-password")
    assert "Created owner first@example.com" in _run("--if-none")
    assert "already exists" in _run("--if-none")
    assert User.objects.count() == 1


def test_promotes_an_existing_member_without_changing_their_password(monkeypatch):
    monkeypatch.delenv("SFP_ADMIN_PASSWORD", raising=False)
    _run("--email", "first@example.com")
    member = User.objects.create_user(email="m@example.com", password="member-password-1")
    Membership.objects.create(team=Team.objects.get(), user=member, role=TeamRole.MEMBER)
    output = _run("--email", "m@example.com")
    assert "Promoted owner m@example.com" in output
    assert "Generated password" not in output
    member.refresh_from_db()
    assert member.check_password("member-password-1")
    assert Membership.objects.get(user=member).role == TeamRole.OWNER
