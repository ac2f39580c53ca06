"""The task API's validation: nothing is enqueued for a rejected request."""

import pytest

from apps.tasks.models import TaskExecution
from tests.tasks.conftest import submit

pytestmark = pytest.mark.django_db


def test_unknown_type_lists_the_valid_ones(owner_client):
    response = submit(owner_client, "deploy-everything", {})
    assert response.status_code == 400
    message = response.json()["message"]
    assert message.startswith(
        "Unknown task type 'deploy-everything'; valid types: apextests, build"
    )
    assert "noop" in message
    assert not TaskExecution.objects.exists()


def test_invalid_data_is_400_with_field_errors(owner_client):
    response = submit(owner_client, "build", {"repository": "not a repo!"})
    assert response.status_code == 400
    details = response.json()["details"]
    assert set(details) == {"data.repository", "data.devhub"}
    assert not TaskExecution.objects.exists()


def test_unknown_keys_in_data_are_400_naming_them(owner_client):
    response = submit(owner_client, "noop", {"sleep": 30})
    assert response.status_code == 400
    body = response.json()
    assert body["message"].startswith("Unknown field in data for noop: sleep (accepted: ")
    assert body["details"] == {"data.sleep": ["Unknown field."]}
    assert not TaskExecution.objects.exists()


def test_an_unregistered_org_is_refused(owner_client):
    response = submit(
        owner_client, "build", {"repository": "acme/app", "devhub": "ghost@acme.example"}
    )
    assert response.status_code == 400
    assert response.json()["message"] == "Org ghost@acme.example is not registered"
    assert not TaskExecution.objects.exists()


def test_members_cannot_start_deployments(member_client, org):
    response = submit(
        member_client, "install", {"repository": "acme/app", "targetOrg": org.username}
    )
    assert response.status_code == 403
    assert response.json()["message"] == "Forbidden - Requires role: owner, application"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"scheduleType": "scheduled"}, "scheduledFor"),
        ({"scheduleType": "scheduled", "scheduledFor": "2001-01-01T00:00:00Z"}, "scheduledFor"),
        ({"retryConfig": {"maxRetries": 99}}, "retryConfig.maxRetries"),
        ({"priority": "urgent"}, "priority"),
        ({"scheduleType": "recurring"}, "recurrenceConfig.intervalSeconds"),
        (
            {"scheduleType": "recurring", "recurrenceConfig": {"intervalSeconds": 0}},
            "recurrenceConfig.intervalSeconds",
        ),
        (
            {"scheduleType": "recurring", "recurrenceConfig": {"intervalSeconds": 5, "maxRuns": 0}},
            "recurrenceConfig.maxRuns",
        ),
    ],
)
def test_bad_scheduling_is_refused(owner_client, extra, field):
    response = submit(owner_client, "noop", {}, **extra)
    assert response.status_code == 400
    assert field in response.json()["details"]
    assert not TaskExecution.objects.exists()


def test_submission_is_recorded_with_its_policy_and_trigger(
    app_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as enqueued:
        response = submit(app_client, "noop", {}, priority="high")
    assert len(enqueued) == 1
    assert response.status_code == 201
    body = response.json()
    assert body["type"] == "noop"
    execution = TaskExecution.objects.get(pk=body["operationId"])
    assert (execution.status, execution.pool, execution.priority) == ("pending", "standard", 20)
    assert execution.max_attempts == 3
    assert execution.triggered_by_kind == "token"
    assert execution.available_at is not None
    assert execution.task_path == "apps.tasks.tasks.noop"


def test_status_of_an_unknown_task_is_404(owner_client):
    assert owner_client.get("/sfp/api/tasks/nope/status").status_code == 404
