"""The custom user model: email is the identity, case-insensitively unique."""

import pytest
from django.db import IntegrityError

from apps.accounts.models import User
from tests.accounts.factories import DEFAULT_PASSWORD, UserFactory

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


def test_superuser_is_staff():
    admin = User.objects.create_superuser(email="root@example.com", password=DEFAULT_PASSWORD)
    assert admin.is_staff and admin.is_superuser


def test_user_requires_an_email():
    with pytest.raises(ValueError, match="email"):
        User.objects.create_user(email="")
