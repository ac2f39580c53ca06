"""Console screens for deliveries and webhook secrets: they render for owners, are read-only,
and never show the secret (plain or sealed)."""

import json

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import TeamRole
from apps.builds import services
from apps.builds.models import WebhookDelivery, WebhookSecret
from tests.accounts.factories import DEFAULT_PASSWORD, TeamFactory, make_member
from tests.projects.factories import ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def console(client):
    owner = make_member(TeamFactory(), TeamRole.OWNER)
    client.login(email=owner.email, password=DEFAULT_PASSWORD)
    return client


def test_delivery_and_secret_screens_render_without_the_secret(console):
    project = ProjectFactory(identifier="acme/app")
    secret = services.webhook_secret_generate(project=project)
    body = json.dumps({"zen": "hi", "repository": {"full_name": "acme/app"}}).encode()
    APIClient().post(
        "/sfp/api/repository/webhook",
        data=body,
        content_type="application/json",
        HTTP_X_GITHUB_EVENT="ping",
        HTTP_X_GITHUB_DELIVERY="p-1",
        HTTP_X_HUB_SIGNATURE_256=services.github_signature(secret, body),
    )
    delivery = WebhookDelivery.objects.get()
    stored = WebhookSecret.objects.get()
    pages = [
        console.get("/admin/builds/webhookdelivery/"),
        console.get(f"/admin/builds/webhookdelivery/{delivery.pk}/change/"),
        console.get("/admin/builds/webhooksecret/"),
        console.get(f"/admin/builds/webhooksecret/{stored.pk}/change/"),
    ]
    for page in pages:
        assert page.status_code == 200
        assert secret.encode() not in page.content
        assert stored.secret.encode() not in page.content
    assert b"p-1" in pages[0].content
    assert console.get("/admin/builds/webhookdelivery/add/").status_code == 403
