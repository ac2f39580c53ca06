"""`manage.py ensure_admin`: first administrator from the environment or a printed password."""

import io

import pytest
from django.core.management import call_command

from apps.accounts.models import User

pytestmark = pytest.mark.django_db


def _run() -> str:
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    return out.getvalue()


def test_creates_admin_from_environment(monkeypatch):
    monkeypatch.setenv("SFP_ADMIN_EMAIL", "ops@example.com")
    monkeypatch.setenv("SFP_ADMIN_PASSWORD", "s3cret-enough-password")
    output = _run()
    admin = User.objects.get(email="ops@example.com")
    assert admin.is_superuser and admin.check_password("s3cret-enough-password")
    assert "s3cret-enough-password" not in output


def test_generates_and_prints_password_once(monkeypatch):
    monkeypatch.delenv("SFP_ADMIN_EMAIL", raising=False)
    monkeypatch.delenv("SFP_ADMIN_PASSWORD", raising=False)
    output = _run()
    password = output.split("Generated password (shown only now): ")[1].strip()
    admin = User.objects.get(email="admin@localhost")
    assert admin.check_password(password)

    again = _run()
    assert "already exists" in again
    assert "Generated password" not in again
    assert User.objects.filter(is_superuser=True).count() == 1
