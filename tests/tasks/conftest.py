"""Fixtures for the task suite: callers, a live in-process worker and the fake sfp CLI."""

import sys
import time
from pathlib import Path

import pytest
from django.test import override_settings

from apps.accounts.models import TeamRole
from apps.tasks.models import FINISHED_STATUSES, TaskExecution
from apps.tasks.worker import Worker
from tests.accounts.factories import TeamFactory, access_token_for, app_token_for, make_member
from tests.integrations.factories import sealed_org
from tests.support.clients import bearer
from tests.support.git_repos import bare_repository

FAKE_SFP = Path(__file__).resolve().parents[1] / "support" / "fake_sfp.py"
AUTH_URL = "force://PlatformCLI::5Aep_TASK_SECRET_refresh@acme.my.salesforce.com"
BUILD_DATA = {"repository": "acme/app", "devhub": "hub@acme.example", "branch": "main"}


def fake_sfp(scenario: str = "success", state: Path | None = None) -> str:
    command = f"{sys.executable} {FAKE_SFP} --scenario {scenario}"
    return command + (f" --state {state}" if state else "")


@pytest.fixture
def git_remote(tmp_path) -> str:
    """A `file://` URL of a bare repository holding a minimal sfdx project (branch main)."""
    return bare_repository(tmp_path / "remote").as_uri()


@pytest.fixture
def team():
    return TeamFactory()


@pytest.fixture
def owner(team):
    return make_member(team, TeamRole.OWNER, email="owner@example.com")


@pytest.fixture
def owner_client(owner):
    return bearer(access_token_for(owner))


@pytest.fixture
def member(team):
    return make_member(team, TeamRole.MEMBER, email="dev@example.com")


@pytest.fixture
def member_client(member):
    return bearer(access_token_for(member))


@pytest.fixture
def app_client(owner):
    return bearer(app_token_for(owner)[1])


@pytest.fixture
def org():
    return sealed_org(username="hub@acme.example", auth_url=AUTH_URL, is_devhub=True)


@pytest.fixture
def start_worker():
    """Start in-process workers (real threads on the real database); stopped after the test."""
    workers = []

    def start(pools=("standard", "long-running"), slots=2, lease_seconds=3.0):
        worker = Worker(
            pools=list(pools), slots=slots, poll_interval=0.05, lease_seconds=lease_seconds
        )
        worker.start()
        workers.append(worker)
        return worker

    with override_settings(SFP_CLI_TERM_GRACE_SECONDS=1.0):
        yield start
        # Whatever a failed test left running is cancelled, so the workers can stop.
        TaskExecution.objects.filter(status="active").update(cancel_requested=True)
        for worker in workers:
            worker.stop()
        for worker in workers:
            assert worker.join(timeout=30), "a worker did not stop"


def wait_for(client, operation_id: str, statuses=FINISHED_STATUSES, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/sfp/api/tasks/{operation_id}/status").json()
        if body["status"] in statuses:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"task {operation_id} still {body} after {timeout} s")
        time.sleep(0.05)


def create_execution(user, *, status: str = "pending", type_: str = "noop") -> TaskExecution:
    """An execution started by `user`, written directly (no worker will pick up a noop that is
    already active)."""
    return TaskExecution.objects.create(
        type=type_,
        status=status,
        task_path="apps.tasks.tasks.noop",
        triggered_by_kind="user",
        triggered_by_id=str(user.pk),
        triggered_by_label=user.email,
    )


def submit(client, type_: str, data: dict, **extra):
    return client.post("/sfp/api/tasks", {"type": type_, "data": data} | extra, format="json")
