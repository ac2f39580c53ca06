"""End to end on the Hatchet backend: the REST API in this process enqueues through hatchet-sdk
into the fake engine (`tests.support.fake_hatchet`), and real `manage.py runworker --pool …`
subprocesses run the attempts against it. Same behaviour as the database backend: completion,
pool routing, retries with the execution's backoff, final failure, cancellation, logs."""

import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection
from django.tasks import task_backends
from django.test import override_settings

from apps.integrations.models import CredentialGrant
from apps.tasks.backends.hatchet import HatchetBackend
from apps.tasks.models import TaskExecution
from tests.support import fake_sf
from tests.support.fake_hatchet import FakeHatchet
from tests.support.servers import PROJECT_ROOT, clean_environment
from tests.tasks.conftest import fake_sfp, submit, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

BUILD = {"repository": "acme/app", "devhub": "hub@acme.example", "branch": "main"}
HATCHET_TASKS = {
    "default": {
        "BACKEND": "apps.tasks.backends.hatchet.HatchetBackend",
        "QUEUES": ["standard", "long-running"],
    }
}


@pytest.fixture(scope="module")
def engine():
    with FakeHatchet() as fake:
        yield fake


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory):
    return tmp_path_factory.mktemp("sfp") / "scenario"


def _use_sfp(scenario_file: Path, scenario: str) -> None:
    """Which fake sfp scenario the shared worker runs next (read at each CLI start)."""
    scenario_file.write_text(scenario)


def _sfp_command(scenario_file: Path) -> str:
    # One worker serves every scenario: a shell reads the scenario file, then runs fake_sfp.
    state = scenario_file.with_name("flaky-attempts")
    script = f'exec {fake_sfp(f"$(cat {scenario_file})", state)} "$@"'
    return f"sh -c {shlex.quote(script)} sh"


@pytest.fixture(scope="module")
def backend(engine) -> HatchetBackend:
    """The API side (this process) on the Hatchet backend, pointed at the fake engine."""
    with override_settings(
        TASKS=HATCHET_TASKS,
        SFP_HATCHET_TOKEN=engine.token(),
        SFP_HATCHET_HOST_PORT=engine.address,
        SFP_HATCHET_TLS_STRATEGY="none",
        SFP_HATCHET_NAMESPACE="",
    ):
        yield task_backends["default"]


def _worker_env(engine: FakeHatchet, **extra) -> dict:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return clean_environment(
        DJANGO_SETTINGS_MODULE="sfpserver.settings.test",
        DATABASE_URL=url,
        HATCHET_CLIENT_TOKEN=engine.token(),
        HATCHET_CLIENT_HOST_PORT=engine.address,
        HATCHET_CLIENT_TLS_STRATEGY="none",
        SFP_CLI_TERM_GRACE_SECONDS="1",
        SFP_HATCHET_CANCEL_POLL_SECONDS="0.2",
        **extra,
    )


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text()


@pytest.fixture(scope="module")
def start_worker(django_db_setup, engine, backend, scenario_file, tmp_path_factory):
    """Start `manage.py runworker` subprocesses on the Hatchet backend (shared by the module:
    importing hatchet-sdk alone takes seconds). Whatever is left is killed at the end."""
    started: list[WorkerProcess] = []
    logs = tmp_path_factory.mktemp("workers")

    def start(pool: str = "standard", name: str = "std-1") -> WorkerProcess:
        log = logs / f"{name}.log"
        with log.open("w") as sink:
            process = subprocess.Popen(
                [sys.executable, "manage.py", "runworker", "--pool", pool, "--slots", "1",
                 "--worker-id", name],
                cwd=PROJECT_ROOT,
                env=_worker_env(
                    engine,
                    SFP_CLI_PATH=_sfp_command(scenario_file),
                    SFP_SF_CLI_PATH=fake_sf.command(),
                ),
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        started.append(WorkerProcess(process, log))
        return started[-1]

    yield start
    for worker in started:
        if worker.process.poll() is None:
            os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait()


@pytest.fixture(scope="module")
def standard_worker(start_worker, engine) -> WorkerProcess:
    worker = start_worker("standard", "std-1")
    _listening(engine, "std-1")
    return worker


@pytest.fixture(autouse=True)
def _cancel_leftovers():
    yield
    TaskExecution.objects.filter(status="active").update(cancel_requested=True)


def _listening(engine: FakeHatchet, name: str, timeout: float = 90) -> None:
    engine.wait(lambda e: (w := e.worker_named(name)) is not None and w.streams > 0, timeout)


def test_noop_runs_to_completed(owner_client, engine, backend, standard_worker):
    backend.health_check()
    operation_id = submit(owner_client, "noop", {}).json()["operationId"]
    status = wait_for(owner_client, operation_id)
    assert status["status"] == "completed", status
    assert status["attempts"] == 1
    assert status["progress"] == 100
    result = owner_client.get(f"/sfp/api/tasks/{operation_id}/result").json()
    assert result["result"] == {"ok": True, "attempt": 1}
    execution = TaskExecution.objects.get(pk=operation_id)
    assert execution.worker_id == "std-1"
    run = engine.run(execution.engine_run_id)
    assert run.input == {"operation_id": operation_id}
    engine.wait(lambda e: run.status == "completed")
    assert run.assignments == ["std-1"]
    assert run.output == {"result": {"ok": True, "attempt": 1}}
    registered = {r.name for r in engine.registrations}
    assert {"build", "install", "noop", "quickbuild", "validate"} <= registered
    std = engine.worker_named("std-1")
    assert std.labels == {"pool": "standard"}
    assert "noop:noop" in std.actions and "release:release" not in std.actions
    assert (
        "Worker std-1: pool standard, 1 slot(s), task types: build, install, noop, quickbuild, "
        "validate" in standard_worker.output()
    )


def test_a_release_waits_for_a_long_running_worker(
    owner_client, org, engine, standard_worker, start_worker, scenario_file
):
    _use_sfp(scenario_file, "success")
    data = {"repository": "acme/app", "targetOrg": "hub@acme.example", "releaseDefinition": "r.yml"}
    operation_id = submit(owner_client, "release", data).json()["operationId"]
    time.sleep(1.0)  # the standard worker is listening, and does not take it
    execution = TaskExecution.objects.get(pk=operation_id)
    assert execution.status == "pending"
    assert engine.run(execution.engine_run_id).status == "queued"
    long_running = start_worker("long-running", "lr-1")
    status = wait_for(owner_client, operation_id, timeout=40)
    assert status["status"] == "completed", status
    assert engine.run(execution.engine_run_id).assignments == ["lr-1"]
    assert TaskExecution.objects.get(pk=operation_id).worker_id == "lr-1"
    # SIGTERM: the SDK drains (its REST pause fails against the fake, and it carries on).
    long_running.process.send_signal(signal.SIGTERM)
    assert long_running.process.wait(timeout=30) == 0
    output = long_running.output()
    assert "pool long-running, 1 slot(s), task types: apextests, pool-prepare, release" in output
    assert "Draining: no new work" in output
    assert "Stopped cleanly." in output


def test_a_flaky_run_succeeds_on_its_engine_retry(
    owner_client, org, engine, standard_worker, scenario_file
):
    _use_sfp(scenario_file, "flaky")
    scenario_file.with_name("flaky-attempts").unlink(missing_ok=True)
    operation_id = submit(
        owner_client, "build", BUILD, retryConfig={"maxRetries": 2, "backoffSeconds": 0.1}
    ).json()["operationId"]
    status = wait_for(owner_client, operation_id, timeout=40)
    assert status["status"] == "completed", status
    assert status["attempts"] == 2
    run = engine.run(TaskExecution.objects.get(pk=operation_id).engine_run_id)
    engine.wait(lambda e: run.status == "completed")
    # (hatchet-sdk 1.43.1 reports STARTED twice per attempt: on receipt and on start)
    endings = [
        (e[0].removeprefix("STEP_EVENT_TYPE_"), e[1]) for e in run.events if "STARTED" not in e[0]
    ]
    assert endings == [("FAILED", 0), ("COMPLETED", 1)]
    assert {e[1] for e in run.events if "STARTED" in e[0]} == {0, 1}
    failed = next(e for e in run.events if "FAILED" in e[0])
    assert failed[3] is False  # should_not_retry
    assert failed[4] == 100  # retry_after_ms: the execution's backoff (0.1 s), not Hatchet's
    assert "sfp exited with code 2" in failed[2]
    logs = owner_client.get(f"/sfp/api/logs/{operation_id}").json()["logs"]
    messages = [line["message"] for line in logs]
    assert "ERROR: Unable to connect to the org (socket hang up)" in messages
    assert messages.count("Step: Finished") == 1
    seqs = [line["seq"] for line in logs]
    assert seqs == sorted(set(seqs))  # both attempts' lines, in order, each once
    assert all("TASK_SECRET" not in m for m in messages)
    assert CredentialGrant.objects.filter(operation_id=operation_id).count() == 2


def test_exhausted_retries_fail_with_the_last_error(
    owner_client, org, engine, standard_worker, scenario_file
):
    _use_sfp(scenario_file, "fail")
    operation_id = submit(
        owner_client, "build", BUILD, retryConfig={"maxRetries": 1, "backoffSeconds": 0.1}
    ).json()["operationId"]
    status = wait_for(owner_client, operation_id, timeout=40)
    assert status["status"] == "failed", status
    assert status["attempts"] == 2
    assert status["error"]["message"] == "sfp exited with code 1"
    assert "Variable does not exist: amount" in status["error"]["stack"]
    run = engine.run(TaskExecution.objects.get(pk=operation_id).engine_run_id)
    engine.wait(lambda e: run.status == "failed")
    assert run.assignments == ["std-1", "std-1"]
    assert run.events[-1][0] == "STEP_EVENT_TYPE_FAILED"
    assert run.events[-1][3] is True  # NonRetryableException: the engine stops here


def test_cancelling_an_active_task_through_the_api(
    owner_client, org, engine, standard_worker, scenario_file
):
    _use_sfp(scenario_file, "hang")
    operation_id = submit(owner_client, "build", BUILD).json()["operationId"]
    wait_for(owner_client, operation_id, statuses=("active",), timeout=30)
    response = owner_client.delete(f"/sfp/api/tasks/{operation_id}")
    assert response.status_code == 200
    status = wait_for(owner_client, operation_id, timeout=20)
    assert status["status"] == "cancelled"
    grant = CredentialGrant.objects.get(operation_id=operation_id)
    assert grant.end_reason == "cancelled"
    run = engine.run(TaskExecution.objects.get(pk=operation_id).engine_run_id)
    # The API also told the engine (CancelTasks), besides the flag the attempt watches.
    engine.wait(lambda e: run.status == "cancelled")


def test_the_engines_cancel_stops_a_running_attempt(
    owner_client, org, engine, backend, standard_worker, scenario_file
):
    _use_sfp(scenario_file, "hang")
    operation_id = submit(owner_client, "build", BUILD).json()["operationId"]
    wait_for(owner_client, operation_id, statuses=("active",), timeout=30)
    execution = TaskExecution.objects.get(pk=operation_id)
    assert backend.cancel_run(execution.engine_run_id) is True
    status = wait_for(owner_client, operation_id, timeout=20)
    assert status["status"] == "cancelled"
    assert not TaskExecution.objects.get(pk=operation_id).cancel_requested
    assert engine.run(execution.engine_run_id).status == "cancelled"


def _install_target(org, git_remote) -> None:
    from apps.environments.models import Environment
    from apps.projects.models import Project

    project = Project.objects.create(
        identifier="acme/app", remote_url=git_remote, platform="github"
    )
    Environment.objects.create(project=project, name="UAT", category="test", org=org)


SOMEONE = "someone@example.com"


def _someone_takes_uat():
    from apps.environments.services import locks

    holder = locks.Holder(key=f"test:{SOMEONE}", label=SOMEONE)
    ticket = locks.lock_request(
        holder=holder, repository="acme/app", resource="env:UAT", lease_seconds=600
    )
    assert ticket.status == "acquired"
    return lambda: locks.lock_release(
        repository="acme/app", resource="env:UAT", ticket_id=ticket.ticket_id, holder=holder
    )


def _until(predicate, timeout: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_an_install_waiting_for_the_lock_is_parked_without_a_slot_and_resumed_by_the_hand_off(
    owner_client, org, engine, standard_worker, scenario_file, git_remote
):
    """Attempt 1 fails (and releases the lock); someone takes the lock before the engine's retry,
    so attempt 2 finds it held: the execution is parked (pending, saying why, untouched), its
    engine run ends and frees the only slot (a noop runs meanwhile), and the release starts a
    new engine run whose attempt is number 2 again, not the new run's retry count + 1."""
    from apps.environments.models import LockStatus, LockTicket
    from apps.tasks.models import TaskAttempt

    _install_target(org, git_remote)
    _use_sfp(scenario_file, "flaky")
    scenario_file.with_name("flaky-attempts").unlink(missing_ok=True)
    operation_id = submit(
        owner_client,
        "install",
        {"repository": "acme/app", "environment": "UAT"},
        retryConfig={"maxRetries": 2, "backoffSeconds": 3},
    ).json()["operationId"]
    _until(
        lambda: LockTicket.objects.filter(
            holder_operation_id=operation_id, status=LockStatus.RELEASED
        ).exists(),
        what="attempt 1 never failed and released the lock",
    )
    release = _someone_takes_uat()
    _use_sfp(scenario_file, "success")
    _until(
        lambda: (TaskExecution.objects.get(pk=operation_id).current_step or "").startswith(
            "Waiting for lock"
        ),
        what="the retry never waited for the lock",
    )
    first_run = TaskExecution.objects.get(pk=operation_id).engine_run_id
    engine.wait(lambda e: e.run(first_run).status == "completed")
    assert (
        engine.run(first_run)
        .output["parked"]
        .startswith(f"Waiting for lock env:UAT of acme/app: held by {SOMEONE}, position 1")
    )
    parked = TaskExecution.objects.get(pk=operation_id)
    status = owner_client.get(f"/sfp/api/tasks/{operation_id}/status").json()
    assert status["status"] == "pending"
    assert status["currentStep"] == parked.current_step
    assert parked.attempts == 1  # the parked claim is not an attempt

    # The only slot is free: a noop runs to completion while the install stays parked.
    noop = submit(owner_client, "noop", {}).json()["operationId"]
    assert wait_for(owner_client, noop, timeout=30)["status"] == "completed"
    assert TaskExecution.objects.get(pk=noop).worker_id == "std-1"
    still = TaskExecution.objects.get(pk=operation_id)
    assert (still.status, still.updated_at) == ("pending", parked.updated_at)  # no churn
    assert still.engine_run_id == first_run

    release()
    final = wait_for(owner_client, operation_id, timeout=40)
    assert final["status"] == "completed", final
    assert final["attempts"] == 2
    resumed = TaskExecution.objects.get(pk=operation_id)
    assert resumed.engine_run_id != first_run
    second_run = engine.run(resumed.engine_run_id)
    engine.wait(lambda e: second_run.status == "completed")
    assert second_run.retry_count == 0 and second_run.assignments == ["std-1"]
    attempts = TaskAttempt.objects.filter(execution_id=operation_id).order_by("number")
    assert [(a.number, a.status) for a in attempts] == [(1, "failed"), (2, "completed")]
    _until(
        lambda: LockTicket.objects.filter(holder_operation_id=operation_id)
        .exclude(status=LockStatus.RELEASED)
        .count()
        == 0,
        timeout=5,
    )


def test_the_release_pipeline_runs_on_hatchet(
    owner_client, org, engine, start_worker, scenario_file
):
    """Steps run as Hatchet tasks; the workers' housekeeping and each step's end advance it."""
    _use_sfp(scenario_file, "success")
    long_running = start_worker("long-running", "lr-pipeline")
    try:
        body = {
            "type": "release",
            "data": {
                "repository": "acme/app",
                "releaseDefinition": "r.yml",
                "targets": ["hub@acme.example"],
            },
        }
        operation_id = owner_client.post("/sfp/api/pipelines", body, format="json").json()[
            "operationId"
        ]
        deadline = time.monotonic() + 40
        while (
            owner_client.get(f"/sfp/api/pipelines/{operation_id}").json()["steps"][1]["status"]
            != "pending"
        ):
            assert time.monotonic() < deadline, "the dry run never finished"
            time.sleep(0.1)
        owner_client.post(f"/sfp/api/pipelines/{operation_id}/approve", {}, format="json")
        deadline = time.monotonic() + 40
        while (pipeline := owner_client.get(f"/sfp/api/pipelines/{operation_id}").json())[
            "status"
        ] != "completed":
            assert time.monotonic() < deadline, pipeline
            time.sleep(0.1)
        deploy = TaskExecution.objects.get(parent_id=operation_id, step="deploy:hub@acme.example")
        assert engine.run(deploy.engine_run_id).assignments == ["lr-pipeline"]
    finally:
        long_running.process.send_signal(signal.SIGTERM)
        long_running.process.wait(timeout=30)
