"""Azure DevOps service hooks: basic-auth password = the project's webhook secret; a git.push
to the default branch builds; a resent notification starts nothing; wrong secrets are 401."""

import base64
import json

import pytest
from rest_framework.test import APIClient

from apps.builds import services
from apps.builds.models import WebhookDelivery
from apps.projects.models import Platform
from apps.tasks.models import TaskExecution
from tests.integrations.factories import sealed_org
from tests.projects.factories import ProjectFactory

pytestmark = pytest.mark.django_db
REPO = "acme/payments/app"
URL = "/sfp/api/repository/webhook/azuredevops?repositoryIdentifier=acme%2Fpayments%2Fapp"


@pytest.fixture
def secret():
    project = ProjectFactory(
        identifier=REPO,
        platform=Platform.AZURE_DEVOPS,
        remote_url="https://dev.azure.com/acme/payments/_git/app",
        configuration={"devHubs": ["devhub@acme.org"]},
    )
    sealed_org(username="devhub@acme.org")
    return services.webhook_secret_generate(project=project)


def git_push(notification_id="n-1", branch="main") -> bytes:
    return json.dumps(
        {
            "id": notification_id,
            "eventType": "git.push",
            "resource": {
                "refUpdates": [{"name": f"refs/heads/{branch}", "newObjectId": "d" * 40}],
                "repository": {"name": "app", "defaultBranch": "refs/heads/main"},
            },
        }
    ).encode()


def notify(body: bytes, password: str | None, url: str = URL):
    headers = {}
    if password is not None:
        basic = base64.b64encode(f"sfp:{password}".encode()).decode()
        headers["HTTP_AUTHORIZATION"] = f"Basic {basic}"
    return APIClient().post(url, data=body, content_type="application/json", **headers)


def test_push_to_default_branch_builds_and_a_resend_starts_nothing(secret):
    first = notify(git_push(), secret)
    assert first.status_code == 200, first.content
    assert first.json()["status"] == "accepted" and first.json()["taskId"]
    again = notify(git_push(), secret)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert TaskExecution.objects.count() == 1
    delivery = WebhookDelivery.objects.get()
    assert (delivery.provider, delivery.branch, delivery.commit_sha) == (
        "azure-devops",
        "main",
        "d" * 40,
    )


@pytest.mark.parametrize(
    "authorization", [None, "Basic !!!notbase64", "Bearer x", "Basic " + "c2Zw"]
)
def test_wrong_or_missing_secret_is_401_and_writes_nothing(secret, authorization):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = APIClient().post(URL, data=git_push(), content_type="application/json", **headers)
    assert response.status_code == 401
    assert notify(git_push(), "wrong-secret").status_code == 401
    assert not WebhookDelivery.objects.exists()


def test_unknown_repository_is_401(secret):
    url = "/sfp/api/repository/webhook/azuredevops?repositoryIdentifier=acme%2Fx%2Fy"
    assert notify(git_push(), secret, url).status_code == 401


def test_notification_without_id_is_400(secret):
    assert notify(json.dumps({"eventType": "git.push"}).encode(), secret).status_code == 400


def test_unknown_service_hook_type_is_stored(secret):
    body = json.dumps({"id": "w-1", "eventType": "workitem.commented", "resource": {}}).encode()
    response = notify(body, secret)
    assert response.status_code == 200
    assert WebhookDelivery.objects.get().reason == "stored; no route for workitem.commented"
