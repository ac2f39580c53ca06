"""The Django admin is the operators' console, branded with the product's name."""

import pytest

from apps.accounts.models import TeamRole
from tests.accounts.factories import DEFAULT_PASSWORD, TeamFactory, UserFactory, make_member

pytestmark = pytest.mark.django_db


def test_login_page_names_the_product(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert b"sfp server console" in response.content


def test_admin_can_manage_users(client):
    admin = make_member(TeamFactory(), TeamRole.OWNER)
    UserFactory(email="dev@example.com")
    assert client.login(email=admin.email, password=DEFAULT_PASSWORD)
    listing = client.get("/admin/accounts/user/")
    assert listing.status_code == 200
    assert b"dev@example.com" in listing.content
    assert client.get("/admin/accounts/user/add/").status_code == 200

    created = client.post(
        "/admin/accounts/user/add/",
        {
            "email": "new@example.com",
            "usable_password": "true",
            "password1": "a-long-enough-password-1",
            "password2": "a-long-enough-password-1",
        },
    )
    assert created.status_code == 302, created.content.decode()[:2000]


def test_password_hashes_are_not_shown_in_the_admin(client):
    admin = make_member(TeamFactory(), TeamRole.OWNER)
    client.login(email=admin.email, password=DEFAULT_PASSWORD)
    page = client.get(f"/admin/accounts/user/{admin.pk}/change/")
    assert page.status_code == 200
    assert admin.password.encode() not in page.content


def test_admin_static_files_are_served(client):
    response = client.get("/static/admin/css/base.css")
    assert response.status_code == 200
