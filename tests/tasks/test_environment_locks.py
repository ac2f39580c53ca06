"""Tasks that target an environment hold its lock while they run: a task waits on a held lock,
says why in its status, and runs once the lock is handed to it; the release pipeline locks each
target environment around its deploy step."""

import time

import pytest
from django.test import override_settings

from apps.environments.models import Environment, LockStatus, LockTicket
from apps.projects.models import Project
from tests.integrations.factories import sealed_org
from tests.tasks.conftest import AUTH_URL, fake_sfp, submit, wait_for
from tests.tasks.test_pipelines import gates_waiting, step, wait_pipeline

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def uat(git_remote):
    project = Project.objects.create(
        identifier="acme/app", remote_url=git_remote, platform="github"
    )
    org = sealed_org(username="uat@acme.example", auth_url=AUTH_URL)
    return Environment.objects.create(project=project, name="UAT", category="test", org=org)


def test_a_task_waits_for_a_held_environment_lock_says_why_then_runs(
    owner_client, app_client, uat, start_worker
):
    held = app_client.post(
        f"/sfp/api/environments/{uat.pk}/lock",
        {"reason": "manual QA", "authType": "none"},
        format="json",
    ).json()
    assert held["status"] == "acquired"
    start_worker()
    with override_settings(SFP_CLI_PATH=fake_sfp("success")):
        operation_id = submit(
            owner_client, "install", {"repository": "acme/app", "environment": "UAT"}
        ).json()["operationId"]
        deadline = time.monotonic() + 10
        while True:
            status = owner_client.get(f"/sfp/api/tasks/{operation_id}/status").json()
            if (status["currentStep"] or "").startswith("Waiting for lock"):
                break
            assert time.monotonic() < deadline, status
            time.sleep(0.05)
        assert status["status"] == "pending"
        assert status["currentStep"].startswith(
            "Waiting for lock env:UAT of acme/app: held by token:ci, position 1, expected wait ~"
        )
        assert status["attempts"] == 0
        app_client.post(
            f"/sfp/api/environments/{uat.pk}/unlock", {"ticketId": held["ticketId"]}, format="json"
        )
        final = wait_for(owner_client, operation_id)
    assert final["status"] == "completed"
    assert final["attempts"] == 1
    deadline = time.monotonic() + 5
    while (
        ticket := LockTicket.objects.get(holder_operation_id=operation_id)
    ).status != LockStatus.RELEASED:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert ticket.released_by == "task completed"


def test_a_waiting_task_is_parked_not_churned_and_woken_by_the_hand_off(
    owner_client, app_client, uat, start_worker
):
    """While the lock is held the task stays pending, unclaimable, without a claim a second
    (the database backend used to flip it active and back every second); the release wakes it at
    once, not at the parking's 60 s safety re-check."""
    from apps.tasks.models import TaskExecution

    held = app_client.post(
        f"/sfp/api/environments/{uat.pk}/lock", {"authType": "none"}, format="json"
    ).json()
    start_worker()
    with override_settings(SFP_CLI_PATH=fake_sfp("success")):
        operation_id = submit(
            owner_client, "install", {"repository": "acme/app", "environment": "UAT"}
        ).json()["operationId"]
        deadline = time.monotonic() + 10
        while not (TaskExecution.objects.get(pk=operation_id).current_step or "").startswith(
            "Waiting for lock"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        seen, parked_at = set(), TaskExecution.objects.get(pk=operation_id).updated_at
        for _ in range(30):  # 1.5 s: the old loop would have re-claimed it at least once
            execution = TaskExecution.objects.get(pk=operation_id)
            seen.add(execution.status)
            time.sleep(0.05)
        assert seen == {"pending"}
        assert execution.updated_at == parked_at  # not touched while parked
        assert execution.available_at.timestamp() > time.time() + 50
        released = time.monotonic()
        app_client.post(
            f"/sfp/api/environments/{uat.pk}/unlock", {"ticketId": held["ticketId"]}, format="json"
        )
        final = wait_for(owner_client, operation_id)
    assert final["status"] == "completed"
    assert time.monotonic() - released < 15


def test_the_lock_is_released_whatever_the_outcome(owner_client, uat, start_worker):
    start_worker()
    with override_settings(SFP_CLI_PATH=fake_sfp("fail")):
        operation_id = submit(
            owner_client,
            "install",
            {"repository": "acme/app", "environment": "UAT"},
            retryConfig={"maxRetries": 0},
        ).json()["operationId"]
        assert wait_for(owner_client, operation_id)["status"] == "failed"
    deadline = time.monotonic() + 5  # released right after the status is written
    while LockTicket.objects.get(holder_operation_id=operation_id).status != LockStatus.RELEASED:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert not owner_client.get(f"/sfp/api/environments/{uat.pk}").json()["isLocked"]


def test_cancelling_a_waiting_task_gives_up_its_place(owner_client, app_client, uat, start_worker):
    app_client.post(f"/sfp/api/environments/{uat.pk}/lock", {"authType": "none"}, format="json")
    start_worker()
    operation_id = submit(
        owner_client, "install", {"repository": "acme/app", "environment": "UAT"}
    ).json()["operationId"]
    deadline = time.monotonic() + 10
    while not LockTicket.objects.filter(holder_operation_id=operation_id).exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    owner_client.delete(f"/sfp/api/tasks/{operation_id}")
    assert wait_for(owner_client, operation_id)["status"] == "cancelled"
    assert LockTicket.objects.get(holder_operation_id=operation_id).status == LockStatus.CANCELLED


def test_unknown_environment_is_refused(owner_client, uat):
    response = submit(owner_client, "install", {"repository": "acme/app", "environment": "PROD"})
    assert response.status_code == 400
    assert response.json()["message"] == "Environment PROD not found in acme/app"


def test_the_release_pipeline_locks_each_environment_around_its_deploy(
    owner_client, uat, start_worker
):
    start_worker()
    with override_settings(SFP_CLI_PATH=fake_sfp("success")):
        response = owner_client.post(
            "/sfp/api/pipelines",
            {
                "type": "release",
                "data": {
                    "repository": "acme/app",
                    "releaseDefinition": "r.yml",
                    "environments": ["UAT"],
                },
            },
            format="json",
        )
        operation_id = response.json()["operationId"]
        wait_pipeline(owner_client, operation_id, gates_waiting("approve:uat@acme.example"))
        assert not LockTicket.objects.exists()  # the dry run holds no lock
        owner_client.post(f"/sfp/api/pipelines/{operation_id}/approve", {}, format="json")
        body = wait_pipeline(owner_client, operation_id, lambda b: b["status"] == "completed")
    deploy = step(body, "deploy:uat@acme.example")["operationId"]
    deadline = time.monotonic() + 5
    while (ticket := LockTicket.objects.get()).status != LockStatus.RELEASED:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert (ticket.holder_operation_id, ticket.status) == (deploy, LockStatus.RELEASED)
