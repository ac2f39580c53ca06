"""The user model: email is the identity (case-insensitively unique); owners run the console."""

import pytest
from django.db import IntegrityError

from apps.accounts.models import TeamRole, User
from tests.accounts.factories import DEFAULT_PASSWORD, TeamFactory, UserFactory, make_member

pytestmark = pytest.mark.django_db


def test_email_is_the_username_and_is_normalised():
    user = User.objects.create_user(email="Ada@Example.COM", password=DEFAULT_PASSWORD)
    assert user.email == "ada@example.com"
    assert User.USERNAME_FIELD == "email"
    assert user.check_password(DEFAULT_PASSWORD)
    assert User.objects.get_by_natural_key("ADA@example.com") == user


def test_email_is_unique_whatever_its_case():
    UserFactory(email="grace@example.com")
    with pytest.raises(IntegrityError):
        User(email="GRACE@example.com").save()


def test_user_without_password_cannot_log_in():
    user = User.objects.create_user(email="nopass@example.com")
    assert not user.has_usable_password()


def test_user_requires_an_email():
    with pytest.raises(ValueError, match="email"):
        User.objects.create_user(email="")


def test_console_access_follows_the_owner_role():
    team = TeamFactory()
    owner = make_member(team, TeamRole.OWNER)
    member = make_member(team, TeamRole.MEMBER)
    assert owner.is_staff and owner.has_perm("accounts.change_user")
    assert not member.is_staff and not member.has_perm("accounts.change_user")
    owner.is_active = False
    assert not owner.is_staff
