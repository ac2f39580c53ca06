"""The behavioural suite on the database backend: real worker threads, the real database, the
fake sfp CLI. Submits through the REST API and watches status, progress, logs and results."""

import os
import time
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from apps.accounts.models import AuditEvent
from apps.integrations.models import CredentialGrant
from apps.tasks.models import TaskExecution, TaskLogLine
from tests.tasks.conftest import fake_sfp, submit, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

BUILD = {"repository": "acme/app", "devhub": "hub@acme.example", "branch": "main"}


def test_noop_runs_to_completed(owner_client, start_worker):
    start_worker()
    operation_id = submit(owner_client, "noop", {}).json()["operationId"]
    status = wait_for(owner_client, operation_id)
    assert status["status"] == "completed"
    assert status["progress"] == 100
    result = owner_client.get(f"/sfp/api/tasks/{operation_id}/result").json()
    assert result["result"] == {"ok": True, "attempt": 1}


def test_a_build_runs_sfp_with_credentials_only_in_its_environment(owner_client, org, start_worker):
    start_worker()
    with override_settings(SFP_CLI_PATH=fake_sfp("success")):
        operation_id = submit(owner_client, "build", BUILD).json()["operationId"]
        status = wait_for(owner_client, operation_id)
    assert status["status"] == "completed", status
    logs = owner_client.get(f"/sfp/api/logs/{operation_id}").json()["logs"]
    messages = [line["message"] for line in logs]
    assert messages[0] == "Project acme/app is not registered: sfp runs without a checkout"
    sfp_line = "$ sfp build --devhubalias devhub --branch main --artifactdir artifacts --diffcheck"
    assert messages.index(sfp_line) > messages.index(
        "Successfully authorized ci@acme.my.salesforce.com with org ID 00D000000000001"
    )  # sfp starts once its org is authorised
    assert (
        "$ sf org login sfdx-url --sfdx-url-file .sfp-auth/devhub.url --alias devhub "
        "--set-default-dev-hub  (hub@acme.example)"
    ) in messages
    assert (
        "Successfully authorized ci@acme.my.salesforce.com with org ID 00D000000000001" in messages
    )
    assert "Using devhub (ci@acme.my.salesforce.com), authorised in the sf CLI" in messages
    assert any(m.endswith("secrets_in_env=0") for m in messages)  # sfp's environment has none
    assert "[4/4] Processing integrations" in messages
    seqs = [line["seq"] for line in logs]
    assert seqs == sorted(set(seqs))  # in order, each once (numbered in the task's event counter)
    assert all("TASK_SECRET" not in m for m in messages)
    execution = TaskExecution.objects.get(pk=operation_id)
    assert execution.current_step == "Finished"
    workspace = next(m for m in messages if "workspace=" in m).split("workspace=")[1].split()[0]
    assert not os.path.exists(workspace), "the workspace was not wiped"
    grant = CredentialGrant.objects.get(operation_id=operation_id)
    assert grant.ended_at is not None
    assert grant.end_reason == "completed"
    assert (
        AuditEvent.objects.filter(action="credential.read", target_type="salesforce_org").count()
        == 1
    )


def test_a_failing_sfp_is_retried_then_fails_with_its_error(owner_client, org, start_worker):
    start_worker()
    with override_settings(SFP_CLI_PATH=fake_sfp("fail")):
        operation_id = submit(
            owner_client, "build", BUILD, retryConfig={"maxRetries": 1, "backoffSeconds": 0.1}
        ).json()["operationId"]
        status = wait_for(owner_client, operation_id)
    assert status["status"] == "failed"
    assert status["attempts"] == 2
    assert status["error"]["message"] == "sfp exited with code 1"
    assert "Variable does not exist: amount" in status["error"]["stack"]
    # A row per attempt: the retry kept the first attempt's error instead of overwriting it.
    history = owner_client.get(f"/sfp/api/tasks/{operation_id}/result").json()["attemptHistory"]
    assert [row["number"] for row in history] == [1, 2]
    for row in history:
        assert row["status"] == "failed"
        assert row["exitCode"] == 1
        assert row["error"]["message"] == "sfp exited with code 1"
        assert row["workerId"] and row["startedAt"] <= row["finishedAt"]


def test_a_flaky_run_succeeds_on_retry(owner_client, org, start_worker, tmp_path):
    start_worker()
    with override_settings(SFP_CLI_PATH=fake_sfp("flaky", tmp_path / "attempts")):
        operation_id = submit(
            owner_client, "build", BUILD, retryConfig={"maxRetries": 2, "backoffSeconds": 0.1}
        ).json()["operationId"]
        status = wait_for(owner_client, operation_id)
    assert status["status"] == "completed"
    assert status["attempts"] == 2
    history = owner_client.get(f"/sfp/api/tasks/{operation_id}/result").json()["attemptHistory"]
    assert [row["status"] for row in history] == ["failed", "completed"]
    assert history[0]["exitCode"] not in (None, 0) and history[0]["error"]["message"]
    assert history[1]["exitCode"] == 0 and history[1]["error"] is None


def test_a_crash_is_a_failure_with_the_signal(owner_client, org, start_worker):
    start_worker()
    with override_settings(SFP_CLI_PATH=fake_sfp("crash")):
        operation_id = submit(owner_client, "build", BUILD, retryConfig={"maxRetries": 0}).json()[
            "operationId"
        ]
        status = wait_for(owner_client, operation_id)
    assert status["status"] == "failed"
    assert status["error"]["message"] == "sfp exited with code -11"


def test_timeouts_are_enforced(owner_client, org, start_worker):
    with override_settings(SFP_CLI_PATH=fake_sfp("hang")):
        operation_id = submit(owner_client, "build", BUILD, retryConfig={"maxRetries": 0}).json()[
            "operationId"
        ]
        TaskExecution.objects.filter(pk=operation_id).update(timeout_seconds=1)
        start_worker()
        status = wait_for(owner_client, operation_id)
    assert status["status"] == "failed"
    assert status["error"]["message"] == "Timed out after 1 s"


def _child_pid(operation_id: str) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = TaskLogLine.objects.filter(
            execution_id=operation_id, message__contains="(child "
        ).first()
        if line:
            return int(line.message.split("(child ")[1].rstrip(")"))
        time.sleep(0.05)
    raise AssertionError("the fake sfp never started its child")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_cancelling_an_active_task_kills_its_whole_process_group(owner_client, org, start_worker):
    start_worker()
    with override_settings(SFP_CLI_PATH=fake_sfp("hang")):
        operation_id = submit(owner_client, "build", BUILD).json()["operationId"]
        wait_for(owner_client, operation_id, statuses=("active",))
        child = _child_pid(operation_id)
        response = owner_client.delete(f"/sfp/api/tasks/{operation_id}")
        assert response.status_code == 200
        status = wait_for(owner_client, operation_id)
    assert status["status"] == "cancelled"
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "a grandchild of the cancelled task survived"
    assert CredentialGrant.objects.get(operation_id=operation_id).end_reason == "cancelled"


def test_a_process_ignoring_sigterm_is_killed(owner_client, org, start_worker):
    start_worker()
    with override_settings(SFP_CLI_PATH=fake_sfp("ignore-term")):
        operation_id = submit(owner_client, "build", BUILD).json()["operationId"]
        wait_for(owner_client, operation_id, statuses=("active",))
        time.sleep(0.3)
        owner_client.delete(f"/sfp/api/tasks/{operation_id}")
        status = wait_for(owner_client, operation_id, timeout=20)
    assert status["status"] == "cancelled"
    messages = TaskLogLine.objects.filter(execution_id=operation_id).values_list(
        "message", flat=True
    )
    assert "Received SIGTERM: ignoring it" in list(messages)


def test_cancelling_a_pending_task_is_immediate_and_final(owner_client):
    operation_id = submit(owner_client, "noop", {}).json()["operationId"]
    response = owner_client.delete(f"/sfp/api/tasks/{operation_id}")
    assert response.json() == {"message": "Task cancelled successfully", "status": "cancelled"}
    again = owner_client.delete(f"/sfp/api/tasks/{operation_id}")
    assert again.status_code == 409


def test_scheduled_tasks_wait_for_their_time(owner_client, start_worker):
    start_worker()
    run_at = timezone.now() + timedelta(seconds=1.5)
    operation_id = submit(
        owner_client, "noop", {}, scheduleType="scheduled", scheduledFor=run_at.isoformat()
    ).json()["operationId"]
    time.sleep(0.5)
    assert owner_client.get(f"/sfp/api/tasks/{operation_id}/status").json()["status"] == "pending"
    wait_for(owner_client, operation_id)
    assert TaskExecution.objects.get(pk=operation_id).started_at >= run_at


def test_higher_priority_runs_first(owner_client, start_worker):
    low = submit(owner_client, "noop", {}, priority="low").json()["operationId"]
    high = submit(owner_client, "noop", {}, priority="critical").json()["operationId"]
    start_worker(slots=1)
    wait_for(owner_client, low)
    wait_for(owner_client, high)
    started = dict(TaskExecution.objects.filter(pk__in=[low, high]).values_list("pk", "started_at"))
    assert started[high] < started[low]


def test_the_claim_orders_every_ready_task_by_priority(owner_client, start_worker):
    """Priority is an integer the claim orders by across all ready tasks, not the oldest 20."""
    backlog = [submit(owner_client, "noop", {}).json()["operationId"] for _ in range(25)]
    urgent = submit(owner_client, "noop", {}, priority="high").json()["operationId"]
    start_worker(slots=1)
    wait_for(owner_client, urgent)
    wait_for(owner_client, backlog[0])
    started = TaskExecution.objects.filter(started_at__isnull=False).order_by("started_at")
    assert started.values_list("pk", flat=True).first() == urgent
    listed = owner_client.get("/sfp/api/tasks?limit=100").json()["items"]
    shown = next(item for item in listed if item["operationId"] == urgent)
    assert shown["priority"] == "high"  # answered in the published form, stored as 20
    assert TaskExecution.objects.get(pk=urgent).priority == 20


def test_pools_route_work(owner_client, org, start_worker):
    start_worker(pools=("standard",))
    with override_settings(SFP_CLI_PATH=fake_sfp("success")):
        release = submit(
            owner_client,
            "release",
            {
                "repository": "acme/app",
                "targetOrg": org.username,
                "releaseDefinition": "release.yml",
            },
        ).json()["operationId"]
        noop = submit(owner_client, "noop", {}).json()["operationId"]
        wait_for(owner_client, noop)
        time.sleep(0.3)
        assert owner_client.get(f"/sfp/api/tasks/{release}/status").json()["status"] == "pending"
        start_worker(pools=("long-running",))
        assert wait_for(owner_client, release)["status"] == "completed"


def test_listing_filters_and_paginates(owner_client, app_client, start_worker):
    start_worker()
    first = submit(owner_client, "noop", {}).json()["operationId"]
    second = submit(app_client, "noop", {"fail": True}, retryConfig={"maxRetries": 0}).json()[
        "operationId"
    ]
    wait_for(owner_client, first)
    wait_for(owner_client, second)
    failed = owner_client.get("/sfp/api/tasks?status=failed").json()
    assert [item["operationId"] for item in failed["items"]] == [second]
    mine = owner_client.get("/sfp/api/tasks?triggeredBy=owner@example.com").json()
    assert [item["operationId"] for item in mine["items"]] == [first]
    page = owner_client.get("/sfp/api/tasks?limit=1").json()
    assert (page["total"], len(page["items"])) == (2, 1)
    assert owner_client.get("/sfp/api/tasks?status=bogus").status_code == 400


def test_logs_by_time_range_and_their_deletion(
    owner_client, member_client, app_client, org, start_worker
):
    start_worker()
    with override_settings(SFP_CLI_PATH=fake_sfp("success")):
        operation_id = submit(owner_client, "build", BUILD).json()["operationId"]
        wait_for(owner_client, operation_id)
    all_lines = member_client.get(f"/sfp/api/logs/{operation_id}").json()["logs"]
    later = app_client.get(
        f"/sfp/api/logs/{operation_id}", {"from": all_lines[-1]["timestamp"]}
    ).json()["logs"]
    assert 1 <= len(later) < len(all_lines)
    assert member_client.delete(f"/sfp/api/logs/{operation_id}").status_code == 403
    assert app_client.delete(f"/sfp/api/logs/{operation_id}").json() == {"deleted": len(all_lines)}
    assert member_client.get(f"/sfp/api/logs/{operation_id}").status_code == 404


def test_recurring_tasks_run_on_their_interval_until_stopped(owner_client, start_worker):
    start_worker()
    operation_id = submit(
        owner_client, "noop", {}, scheduleType="recurring", recurrenceConfig={"intervalSeconds": 1}
    ).json()["operationId"]
    deadline = time.monotonic() + 15
    while (
        owner_client.get(f"/sfp/api/tasks/{operation_id}/recurring-instances").json()["total"] < 2
    ):
        assert time.monotonic() < deadline, "fewer than two runs in 15 s"
        time.sleep(0.1)
    stopped = owner_client.post(f"/sfp/api/tasks/{operation_id}/stop-recurring")
    assert stopped.status_code == 200
    assert owner_client.get(f"/sfp/api/tasks/{operation_id}/status").json()["status"] == "cancelled"
    runs = owner_client.get(f"/sfp/api/tasks/{operation_id}/recurring-instances").json()["total"]
    for item in owner_client.get(f"/sfp/api/tasks/{operation_id}/recurring-instances").json()[
        "items"
    ]:
        wait_for(owner_client, item["operationId"])
    time.sleep(1.5)
    assert (
        owner_client.get(f"/sfp/api/tasks/{operation_id}/recurring-instances").json()["total"]
        == runs
    )
    result = owner_client.get(f"/sfp/api/tasks/{operation_id}/result").json()
    assert result["status"] == "completed"
    assert result["result"]["ok"] is True
    assert owner_client.post(f"/sfp/api/tasks/{operation_id}/stop-recurring").status_code == 409


def test_a_recurring_task_with_max_runs_completes_by_itself(owner_client, start_worker):
    start_worker()
    operation_id = submit(
        owner_client,
        "noop",
        {},
        scheduleType="recurring",
        recurrenceConfig={"intervalSeconds": 1, "maxRuns": 2},
    ).json()["operationId"]
    status = wait_for(owner_client, operation_id, timeout=20)
    assert status["status"] == "completed"
    assert (
        owner_client.get(f"/sfp/api/tasks/{operation_id}/recurring-instances").json()["total"] == 2
    )


def test_an_org_the_sf_cli_refuses_fails_the_task_at_once(owner_client, start_worker):
    from tests.integrations.factories import sealed_org

    sealed_org(username="hub@acme.example", auth_url="force://not a valid url", is_devhub=True)
    start_worker()
    with override_settings(SFP_CLI_PATH=fake_sfp("success")):
        operation_id = submit(owner_client, "build", BUILD).json()["operationId"]
        status = wait_for(owner_client, operation_id)
    assert status["status"] == "failed"
    assert status["attempts"] == 1  # the same URL would be refused again
    assert status["error"]["message"] == (
        "Could not authorise org hub@acme.example (devhub) in the sf CLI: Invalid SFDX "
        'authorization URL. Must be in the format "force://<clientId>:<clientSecret>:'
        '<refreshToken>@<instanceUrl>".'
    )
    messages = [
        m["message"] for m in owner_client.get(f"/sfp/api/logs/{operation_id}").json()["logs"]
    ]
    assert not any(m.startswith("$ sfp") for m in messages)
    assert all("not a valid url" not in m for m in messages)


def test_secret_files_exist_only_while_their_command_runs_and_only_for_its_owner():
    from apps.tasks.runner import Command, run_cli

    lines = []
    secret = {".sfp-auth/devhub.url": "force://id:secret:refresh@example.my.salesforce.com"}
    outcome = run_cli(
        [
            Command(["sh", "-c", "stat -c %a .sfp-auth/devhub.url .sfp-auth"], secret_files=secret),
            Command(["sh", "-c", "ls .sfp-auth | wc -l"]),
        ],
        timeout_seconds=30,
        on_line=lambda stream, text: lines.append(text),
        cancel_requested=lambda: False,
    )
    assert outcome.exit_code == 0
    assert lines == ["600", "700", "0"]
    assert secret == {}  # the caller's copy is cleared too
