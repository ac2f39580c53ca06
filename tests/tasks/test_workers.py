"""Real `manage.py runworker` processes: a SIGKILLed worker's task is retried by another, SIGTERM
drains in-flight work, `manage.py drain` pauses dispatch."""

import signal
import subprocess
import sys
import time

import pytest
from django.db import connection

from apps.tasks.models import DispatchState, TaskExecution
from tests.support.servers import PROJECT_ROOT, clean_environment, manage
from tests.tasks.conftest import submit, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _worker_env(**extra) -> dict:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return clean_environment(
        DJANGO_SETTINGS_MODULE="sfpserver.settings.test",
        DATABASE_URL=url,
        SFP_WORKER_POLL_INTERVAL="0.05",
        **extra,
    )


def _start_worker(name: str, **extra) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "runworker", "--pool", "standard", "--slots", "1",
         "--worker-id", name, "--drain-seconds", "20"],
        cwd=PROJECT_ROOT,
        env=_worker_env(**extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip


def _wait_claimed_by(operation_id: str, worker: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not TaskExecution.objects.filter(
        pk=operation_id, status="active", worker_id=worker
    ).exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{worker} never claimed {operation_id}")
        time.sleep(0.05)


def test_a_sigkilled_workers_task_is_retried_to_completion(owner_client):
    operation_id = submit(owner_client, "noop", {"sleepSeconds": 4}).json()["operationId"]
    first = _start_worker("doomed", SFP_WORKER_LEASE_SECONDS="1.5")
    try:
        _wait_claimed_by(operation_id, "doomed")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        first.kill()
    second = _start_worker("survivor", SFP_WORKER_LEASE_SECONDS="1.5")
    try:
        status = wait_for(owner_client, operation_id, timeout=60)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    assert status["status"] == "completed"
    assert status["attempts"] == 2
    execution = TaskExecution.objects.get(pk=operation_id)
    assert execution.worker_id == "survivor"
    assert execution.result == {"ok": True, "attempt": 2}


def test_sigterm_drains_in_flight_work(owner_client):
    operation_id = submit(owner_client, "noop", {"sleepSeconds": 1.5}).json()["operationId"]
    worker = _start_worker("draining")
    try:
        _wait_claimed_by(operation_id, "draining")
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
    finally:
        worker.kill()
    assert worker.returncode == 0
    assert (
        "pool standard, 1 slot(s), task types: build, install, noop, quickbuild, validate" in output
    )
    assert "Draining: no new work" in output
    assert "Stopped cleanly." in output
    assert TaskExecution.objects.get(pk=operation_id).status == "completed"


def test_drain_pauses_dispatch_until_resumed(owner_client):
    result = manage("drain", "--timeout", "5", env=_worker_env())
    assert result.returncode == 0, result.stderr
    assert "Drained: no task is running." in result.stdout
    assert DispatchState.is_paused()
    operation_id = submit(owner_client, "noop", {}).json()["operationId"]
    worker = _start_worker("paused")
    try:
        time.sleep(1.0)
        assert TaskExecution.objects.get(pk=operation_id).status == "pending"
        assert manage("drain", "--resume", env=_worker_env()).returncode == 0
        assert wait_for(owner_client, operation_id)["status"] == "completed"
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)


def test_runworker_reports_its_toolchain_and_refuses_a_missing_tool(settings):
    import io

    from django.core.management import CommandError, call_command

    from tests.tasks.conftest import fake_sfp

    settings.SFP_CLI_PATH = fake_sfp()
    output = io.StringIO()
    call_command("runworker", "--check-toolchain", stdout=output, stderr=io.StringIO())
    report = output.getvalue()
    assert "SFP_GIT_PATH='git': /usr/bin/git (git version" in report
    assert "(@salesforce/cli/2.150.6 linux-x64 node-v22.19.0 (fake))" in report
    assert "(@flxbl-io/sfp/39.2.2 linux-x64 node-v22.19.0 (fake))" in report

    settings.SFP_SF_CLI_PATH = "no-such-sf-cli"
    errors = io.StringIO()
    with pytest.raises(CommandError, match="A tool that tasks run with is missing"):
        call_command("runworker", "--check-toolchain", stdout=io.StringIO(), stderr=errors)
    assert "SFP_SF_CLI_PATH='no-such-sf-cli': NOT FOUND" in errors.getvalue()
    assert "Install it or point SFP_SF_CLI_PATH at it." in errors.getvalue()
