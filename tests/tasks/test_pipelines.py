"""Pipelines on the database backend: the release pipeline's dry runs, approval gates, deploys;
rejection, retrying a failed step alone, cancelling the whole pipeline, surviving a restart."""

import time

import pytest
from django.test import override_settings

from apps.tasks import pipelines
from apps.tasks.models import TaskExecution
from tests.integrations.factories import sealed_org
from tests.tasks.conftest import AUTH_URL, fake_sfp

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def targets():
    sealed_org(username="uat@acme.example", auth_url=AUTH_URL)
    sealed_org(username="prod@acme.example", auth_url=AUTH_URL.replace("TASK", "PROD"))
    return ["uat@acme.example", "prod@acme.example"]


def start_release(client, targets):
    body = {
        "type": "release",
        "data": {
            "repository": "acme/app",
            "releaseDefinition": "release-1.0.yml",
            "targets": targets,
        },
    }
    response = client.post("/sfp/api/pipelines", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["operationId"]


def wait_pipeline(client, operation_id, predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/sfp/api/pipelines/{operation_id}").json()
        if predicate(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"pipeline never reached the expected state: {body}")
        time.sleep(0.05)


def step(body, name):
    return next(s for s in body["steps"] if s["name"] == name)


def gates_waiting(*names):
    return lambda body: all(step(body, n)["status"] == "pending" for n in names)


def test_release_runs_dry_runs_waits_for_approvals_then_deploys(
    owner_client, targets, start_worker
):
    start_worker()
    with override_settings(SFP_CLI_PATH=fake_sfp("success")):
        operation_id = start_release(owner_client, targets)
        both_gates = gates_waiting("approve:uat@acme.example", "approve:prod@acme.example")
        # The summary line follows the steps: whichever advance runs last (a step's end or the
        # workers' tick, every 0.5 s) writes it, so wait for it rather than read it at once.
        body = wait_pipeline(
            owner_client,
            operation_id,
            lambda b: both_gates(b) and (b["currentStep"] or "").startswith("Waiting for approval"),
        )
        assert body["status"] == "active"
        assert body["currentStep"].startswith(
            "Waiting for approval: Approve the release of release-1.0.yml to"
        )
        assert step(body, "dry-run:uat@acme.example")["status"] == "completed"
        assert step(body, "deploy:uat@acme.example")["status"] == "waiting"
        ambiguous = owner_client.post(
            f"/sfp/api/pipelines/{operation_id}/approve", {}, format="json"
        )
        assert ambiguous.status_code == 400
        approved = owner_client.post(
            f"/sfp/api/pipelines/{operation_id}/approve",
            {"step": "approve:uat@acme.example", "comment": "UAT ok"},
            format="json",
        )
        assert approved.status_code == 200
        assert (
            step(approved.json(), "approve:uat@acme.example")["decision"]["by"]
            == "owner@example.com"
        )
        body = wait_pipeline(
            owner_client,
            operation_id,
            lambda b: step(b, "deploy:uat@acme.example")["status"] == "completed",
        )
        assert body["status"] == "active"
        owner_client.post(f"/sfp/api/pipelines/{operation_id}/approve", {}, format="json")
        body = wait_pipeline(owner_client, operation_id, lambda b: b["status"] == "completed")
    assert body["progress"] == 100
    assert body["currentStep"] == "Completed"  # no stale "Running: …" line
    assert set(body["result"]["steps"].values()) == {"completed"}
    deploy = TaskExecution.objects.get(parent_id=operation_id, step="deploy:prod@acme.example")
    messages = list(deploy.log_lines.values_list("message", flat=True))
    assert "$ sfp release --releasedefinition release-1.0.yml --targetorg target" in messages


def test_only_owners_decide_gates(owner_client, member_client, app_client, targets, start_worker):
    start_worker()
    with override_settings(SFP_CLI_PATH=fake_sfp("success")):
        operation_id = start_release(app_client, targets[:1])
        wait_pipeline(owner_client, operation_id, gates_waiting("approve:uat@acme.example"))
        for client in (member_client, app_client):
            denied = client.post(f"/sfp/api/pipelines/{operation_id}/approve", {}, format="json")
            assert denied.status_code == 403
            assert denied.json()["message"] == "Forbidden - Requires role: owner"


def test_rejecting_a_gate_fails_the_pipeline(owner_client, targets, start_worker):
    start_worker()
    with override_settings(SFP_CLI_PATH=fake_sfp("success")):
        operation_id = start_release(owner_client, targets)
        wait_pipeline(
            owner_client,
            operation_id,
            gates_waiting("approve:uat@acme.example", "approve:prod@acme.example"),
        )
        owner_client.post(
            f"/sfp/api/pipelines/{operation_id}/reject",
            {"step": "approve:prod@acme.example", "comment": "not today"},
            format="json",
        )
        body = wait_pipeline(owner_client, operation_id, lambda b: b["status"] == "failed")
    assert (
        body["error"]["message"]
        == "Step approve:prod@acme.example failed: Rejected by owner@example.com: not today"
    )
    assert step(body, "deploy:prod@acme.example")["status"] == "waiting"
    assert step(body, "approve:uat@acme.example")["status"] == "failed"  # closed: nothing will run


def test_a_failed_step_is_retried_alone(owner_client, targets, start_worker, tmp_path):
    start_worker()
    with override_settings(SFP_CLI_PATH=fake_sfp("fail")):
        operation_id = start_release(owner_client, targets[:1])
        body = wait_pipeline(owner_client, operation_id, lambda b: b["status"] == "failed")
    assert step(body, "dry-run:uat@acme.example")["status"] == "failed"
    assert body["currentStep"] == "Stopped"  # the error says at which step and why
    with override_settings(SFP_CLI_PATH=fake_sfp("success")):
        retried = owner_client.post(
            f"/sfp/api/pipelines/{operation_id}/retry",
            {"step": "dry-run:uat@acme.example"},
            format="json",
        )
        assert retried.status_code == 200
        body = wait_pipeline(owner_client, operation_id, gates_waiting("approve:uat@acme.example"))
        assert body["status"] == "active"
        assert (
            owner_client.post(
                f"/sfp/api/pipelines/{operation_id}/retry",
                {"step": "dry-run:uat@acme.example"},
                format="json",
            ).status_code
            == 409
        )


def test_cancelling_the_pipeline_cancels_its_steps(owner_client, targets, start_worker):
    start_worker()
    with override_settings(SFP_CLI_PATH=fake_sfp("hang")):
        operation_id = start_release(owner_client, targets)
        wait_pipeline(
            owner_client,
            operation_id,
            lambda b: all(step(b, f"dry-run:{t}")["status"] == "active" for t in targets),
        )
        assert owner_client.delete(f"/sfp/api/tasks/{operation_id}").json()["status"] == "cancelled"
        body = wait_pipeline(
            owner_client,
            operation_id,
            lambda b: all(step(b, f"dry-run:{t}")["status"] == "cancelled" for t in targets),
        )
    assert body["status"] == "cancelled"


def test_a_waiting_pipeline_survives_a_restart(owner_client, targets, start_worker):
    first = start_worker()
    with override_settings(SFP_CLI_PATH=fake_sfp("success")):
        operation_id = start_release(owner_client, targets[:1])
        wait_pipeline(owner_client, operation_id, gates_waiting("approve:uat@acme.example"))
        first.stop()
        assert first.join(timeout=10)
        owner_client.post(f"/sfp/api/pipelines/{operation_id}/approve", {}, format="json")
        start_worker()  # a "restarted" server: all it knows is in the database
        body = wait_pipeline(owner_client, operation_id, lambda b: b["status"] == "completed")
    assert [s["status"] for s in body["steps"]] == ["completed", "completed", "completed"]


def test_invalid_pipelines_are_refused_and_nothing_starts(owner_client, member_client, targets):
    bad = owner_client.post(
        "/sfp/api/pipelines",
        {
            "type": "release",
            "data": {"repository": "acme/app", "releaseDefinition": "r.yml", "targets": []},
        },
        format="json",
    )
    assert bad.status_code == 400
    unknown = owner_client.post(
        "/sfp/api/pipelines", {"type": "rollout", "data": {}}, format="json"
    )
    assert unknown.json()["message"] == "Unknown pipeline 'rollout'; valid pipelines: release"
    ghost = owner_client.post(
        "/sfp/api/pipelines",
        {
            "type": "release",
            "data": {
                "repository": "acme/app",
                "releaseDefinition": "r.yml",
                "targets": ["ghost@acme.example"],
            },
        },
        format="json",
    )
    assert ghost.json()["message"] == "Org ghost@acme.example is not registered"
    member = member_client.post(
        "/sfp/api/pipelines", {"type": "release", "data": {}}, format="json"
    )
    assert member.status_code == 403
    assert not TaskExecution.objects.exists()
    assert pipelines.advance_all() == 0


def test_the_console_approves_gates(client, owner, owner_client, targets, start_worker):
    from tests.accounts.factories import DEFAULT_PASSWORD

    client.login(email=owner.email, password=DEFAULT_PASSWORD)
    start_worker()
    with override_settings(SFP_CLI_PATH=fake_sfp("success")):
        operation_id = start_release(owner_client, targets[:1])
        body = wait_pipeline(owner_client, operation_id, gates_waiting("approve:uat@acme.example"))
        gate = step(body, "approve:uat@acme.example")["operationId"]
        client.post(
            "/admin/tasks/taskexecution/", {"action": "approve_gates", "_selected_action": [gate]}
        )
        body = wait_pipeline(owner_client, operation_id, lambda b: b["status"] == "completed")
    assert step(body, "approve:uat@acme.example")["decision"]["approved"] is True
