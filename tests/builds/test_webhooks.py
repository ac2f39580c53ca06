"""GitHub webhooks: signature checks before anything is written, one delivery row per
X-GitHub-Delivery, routed work (a build task execution) stored with the delivery in one
transaction, and the failure paths: forged, missing and stale signatures, malformed and huge
bodies, redeliveries (also racing), and PostgreSQL failing mid-way."""

import json
import threading

import pytest
from django.db import connection, connections
from django.test import override_settings
from rest_framework.test import APIClient

from apps.builds import services
from apps.builds.models import DeliveryStatus, WebhookDelivery
from apps.tasks.models import TaskExecution, TriggerKind
from tests.accounts.factories import TeamFactory, app_token_for, make_member
from tests.integrations.factories import sealed_org
from tests.projects.factories import ProjectFactory
from tests.support.clients import bearer

pytestmark = pytest.mark.django_db
URL = "/sfp/api/repository/webhook"
DEVHUB = "devhub@acme.org"


@pytest.fixture
def project():
    project = ProjectFactory(identifier="acme/app", configuration={"devHubs": [DEVHUB]})
    sealed_org(username=DEVHUB)
    return project


@pytest.fixture
def secret(project):
    return services.webhook_secret_generate(project=project)


def push(sha="a" * 40, branch="main", repository="acme/app") -> bytes:
    return json.dumps(
        {
            "ref": f"refs/heads/{branch}",
            "after": sha,
            "repository": {"full_name": repository, "default_branch": "main"},
            "head_commit": {"id": sha, "message": "Merge pull request #1"},
        }
    ).encode()


def deliver(body: bytes, *, secret: str | None, event="push", delivery="d-1", signature=None):
    headers = {"HTTP_X_GITHUB_EVENT": event, "HTTP_X_GITHUB_DELIVERY": delivery}
    if signature is None and secret is not None:
        signature = services.github_signature(secret, body)
    if signature is not None:
        headers["HTTP_X_HUB_SIGNATURE_256"] = signature
    return APIClient().post(URL, data=body, content_type="application/json", **headers)


def test_signed_push_to_default_branch_stores_delivery_and_enqueues_build(secret):
    response = deliver(push(), secret=secret)
    assert response.status_code == 202, response.content
    body = response.json()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.route, delivery.commit_sha) == ("accepted", "build", "a" * 40)
    execution = TaskExecution.objects.get(pk=body["taskId"])
    assert execution.type == "build"
    assert execution.data["repository"] == "acme/app" and execution.data["branch"] == "main"
    assert execution.data["devhub"] == DEVHUB
    assert execution.triggered_by_kind == TriggerKind.WEBHOOK
    assert execution.triggered_by_id == "d-1"
    assert delivery.task_operation_id == execution.operation_id


def test_redelivery_is_counted_and_starts_nothing(secret):
    first = deliver(push(), secret=secret)
    again = deliver(push(), secret=secret)
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert again.json()["taskId"] == first.json()["taskId"]
    assert TaskExecution.objects.count() == 1
    assert WebhookDelivery.objects.get().duplicates == 1


@pytest.mark.parametrize(
    "signature",
    [
        "sha256=" + "0" * 64,  # forged
        "sha1=abcdef",  # the old scheme, not accepted
        "",  # empty
    ],
)
def test_forged_signature_is_401_and_writes_nothing(secret, signature):
    response = deliver(push(), secret=secret, signature=signature)
    assert response.status_code == 401
    assert response.json() == {
        "statusCode": 401,
        "message": "Webhook signature could not be verified",
        "error": "Unauthorized",
    }
    assert not WebhookDelivery.objects.exists() and not TaskExecution.objects.exists()


def test_missing_signature_is_401(secret):
    assert deliver(push(), secret=None).status_code == 401
    assert not WebhookDelivery.objects.exists()


def test_stale_signature_from_a_rotated_secret_is_401(project, secret):
    services.webhook_secret_generate(project=project)  # rotate: the old secret is void
    assert deliver(push(), secret=secret).status_code == 401
    assert not WebhookDelivery.objects.exists()


def test_body_changed_after_signing_is_401(secret):
    signature = services.github_signature(secret, push())
    assert deliver(push(sha="b" * 40), secret=secret, signature=signature).status_code == 401


def test_unknown_repository_answers_like_a_forged_signature(secret):
    body = push(repository="acme/unknown")
    response = deliver(body, secret=secret)
    assert response.status_code == 401
    assert response.json()["message"] == "Webhook signature could not be verified"


def test_project_without_secret_is_401(project):
    assert deliver(push(), secret="never-generated").status_code == 401


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_malformed_body_is_400(secret, body):
    response = deliver(body, secret=secret)
    assert response.status_code == 400
    assert response.json()["statusCode"] == 400
    assert not WebhookDelivery.objects.exists()


@override_settings(SFP_API_MAX_JSON_BYTES=1024)
def test_huge_body_is_413_before_verification(secret):
    body = json.dumps({"repository": {"full_name": "acme/app"}, "pad": "x" * 4096}).encode()
    response = deliver(body, secret=secret)
    assert response.status_code == 413
    assert not WebhookDelivery.objects.exists()


def test_signed_delivery_without_delivery_header_is_400(secret):
    response = deliver(push(), secret=secret, delivery="")
    assert response.status_code == 400
    assert not WebhookDelivery.objects.exists()


def test_unknown_event_is_stored_and_acknowledged(secret):
    body = json.dumps({"zen": "Keep it simple.", "repository": {"full_name": "acme/app"}}).encode()
    response = deliver(body, secret=secret, event="ping", delivery="p-1")
    assert response.status_code == 202
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.route) == ("accepted", "")
    assert delivery.reason == "stored; no route for ping"
    assert not TaskExecution.objects.exists()


def test_push_to_a_feature_branch_builds_nothing(secret):
    response = deliver(push(branch="feature/x"), secret=secret)
    assert response.status_code == 202
    assert response.json()["taskId"] is None
    assert not TaskExecution.objects.exists()


def test_push_to_a_release_branch_builds(secret):
    assert deliver(push(branch="release/2.0"), secret=secret).json()["taskId"]


def test_project_without_devhub_stores_rejected_delivery(project, secret):
    project.configuration = {}
    project.save()
    response = deliver(push(), secret=secret)
    assert response.status_code == 202
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.REJECTED
    assert delivery.reason == "build not started: the project configures no devHubs"


def test_unregistered_devhub_stores_rejected_delivery(project, secret):
    project.configuration = {"devHubs": ["other@acme.org"]}
    project.save()
    deliver(push(), secret=secret)
    assert WebhookDelivery.objects.get().reason == (
        "build not started: DevHub other@acme.org is not registered"
    )


def test_newer_push_supersedes_the_queued_build(secret):
    first = deliver(push(sha="a" * 40), secret=secret, delivery="d-1").json()
    second = deliver(push(sha="b" * 40), secret=secret, delivery="d-2").json()
    assert second["taskId"] == first["taskId"]
    assert second["reason"] == f"coalesced into queued build {first['taskId']}"
    execution = TaskExecution.objects.get()
    assert execution.triggered_by_id == "d-2"


def test_postgresql_error_mid_way_leaves_nothing_half_written(secret):
    """The task insert fails after the delivery row was written: both roll back, the caller gets
    a clean error, and GitHub's redelivery then succeeds."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION refuse_build() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            "CREATE TRIGGER refuse_build BEFORE INSERT ON tasks_taskexecution "
            "FOR EACH ROW EXECUTE FUNCTION refuse_build()"
        )
    refused = deliver(push(), secret=secret)
    assert refused.status_code == 503
    assert refused.json()["message"] == "The delivery could not be stored; redeliver it"
    assert not WebhookDelivery.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER refuse_build ON tasks_taskexecution")
    assert deliver(push(), secret=secret).status_code == 202
    assert WebhookDelivery.objects.count() == 1 and TaskExecution.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_copies_racing_store_one_delivery_and_one_build():
    ProjectFactory(identifier="acme/app", configuration={"devHubs": [DEVHUB]})
    sealed_org(username=DEVHUB)
    from apps.projects.models import Project

    secret = services.webhook_secret_generate(project=Project.objects.get())
    barrier = threading.Barrier(2)
    answers = []

    def send():
        barrier.wait()
        answers.append(deliver(push(), secret=secret).status_code)
        connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(answers) == [200, 202]
    assert WebhookDelivery.objects.count() == 1
    assert WebhookDelivery.objects.get().duplicates == 1
    assert TaskExecution.objects.count() == 1


def test_deliveries_are_listed_for_owners_and_applications(secret):
    deliver(push(), secret=secret)
    owner = make_member(TeamFactory(), "owner")
    _, token = app_token_for(owner)
    response = bearer(token).get(
        "/sfp/api/repository/webhook-deliveries?repositoryIdentifier=acme%2Fapp"
    )
    assert response.status_code == 200
    [listed] = response.json()["deliveries"]
    assert listed["deliveryId"] == "d-1" and listed["route"] == "build"
    assert "payload" not in listed
    assert bearer(token).get("/sfp/api/repository/webhook-deliveries?limit=0").status_code == 400
    assert bearer(token).get("/sfp/api/repository/webhook-deliveries?status=odd").status_code == 400


def test_deliveries_listing_refuses_anonymous():
    assert APIClient().get("/sfp/api/repository/webhook-deliveries").status_code == 401


def test_configured_routes_replace_the_defaults(project, secret):
    project.configuration = {
        "devHubs": [DEVHUB],
        "webhookRoutes": [{"event": "push", "branches": ["develop"], "pipeline": "build"}],
    }
    project.save()
    assert deliver(push(branch="main"), secret=secret, delivery="m").json()["taskId"] is None
    assert deliver(push(branch="develop"), secret=secret, delivery="d").json()["taskId"]


def test_invalid_configured_routes_keep_the_delivery_as_rejected(project, secret):
    project.configuration = {"webhookRoutes": [{"event": "push", "pipeline": "deploy"}]}
    project.save()
    response = deliver(push(), secret=secret)
    assert response.status_code == 202
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.REJECTED
    assert delivery.reason.startswith("configuration.webhookRoutes is invalid: webhookRoutes[0]")
    assert not TaskExecution.objects.exists()


def test_pull_request_routes_to_validate_and_says_it_cannot_start_yet(secret):
    body = json.dumps(
        {
            "action": "opened",
            "pull_request": {"head": {"ref": "feature/x", "sha": "c" * 40}},
            "repository": {"full_name": "acme/app", "default_branch": "main"},
        }
    ).encode()
    response = deliver(body, secret=secret, event="pull_request", delivery="pr-1")
    assert response.status_code == 202
    delivery = WebhookDelivery.objects.get()
    assert (delivery.route, delivery.branch, delivery.commit_sha) == (
        "validate",
        "feature/x",
        "c" * 40,
    )
    assert delivery.reason == "routed to validate; review-environment pools are not available yet"
