"""Resuming parked executions on the Hatchet backend, in this process against the fake engine
(`tests.support.fake_hatchet`): housekeeping's safety re-check starts one new engine run per due
parked execution, and an engine that refuses the run leaves the execution parked for the next
re-check instead of breaking the caller (an unlock request, a lock release)."""

from datetime import timedelta

import pytest
from django.tasks import task_backends
from django.test import override_settings
from django.utils import timezone
from django.utils.module_loading import import_string

from apps.tasks.backends.hatchet import resume_due_parked
from apps.tasks.models import TaskExecution
from tests.support.fake_hatchet import FakeHatchet
from tests.tasks.conftest import submit
from tests.tasks.test_hatchet_engine import HATCHET_TASKS

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def engine():
    with FakeHatchet() as fake:
        yield fake


def _hatchet_settings(engine: FakeHatchet, address: str):
    return override_settings(
        TASKS=HATCHET_TASKS,
        SFP_HATCHET_TOKEN=engine.token(),
        SFP_HATCHET_HOST_PORT=address,
        SFP_HATCHET_TLS_STRATEGY="none",
        SFP_HATCHET_NAMESPACE="",
    )


def _parked(owner_client) -> TaskExecution:
    """A noop whose first engine run was parked and whose safety re-check has come due."""
    operation_id = submit(owner_client, "noop", {}).json()["operationId"]
    TaskExecution.objects.filter(pk=operation_id).update(
        status="pending",
        current_step="Waiting for lock env:UAT of acme/app: held by someone",
        available_at=timezone.now() - timedelta(seconds=1),
    )
    return TaskExecution.objects.get(pk=operation_id)


def test_the_safety_recheck_starts_one_new_engine_run_per_due_parked_execution(
    owner_client, engine
):
    with _hatchet_settings(engine, engine.address):
        parked = _parked(owner_client)
        not_due = _parked(owner_client)
        TaskExecution.objects.filter(pk=not_due.pk).update(
            available_at=timezone.now() + timedelta(seconds=60)
        )
        assert resume_due_parked() == 1
        assert resume_due_parked() == 0  # the parking mark was taken: no second run
    resumed = TaskExecution.objects.get(pk=parked.pk)
    assert resumed.available_at is None
    assert resumed.engine_run_id != parked.engine_run_id
    new_run = engine.run(resumed.engine_run_id)
    assert new_run.input == {"operation_id": parked.pk}
    assert TaskExecution.objects.get(pk=not_due.pk).engine_run_id == not_due.engine_run_id


def test_an_engine_that_refuses_the_new_run_leaves_the_execution_parked(owner_client, engine):
    with _hatchet_settings(engine, engine.address):
        parked = _parked(owner_client)
        engine.stop()  # nothing answers at the engine's address any more
        resumed = task_backends["default"].resume_parked(import_string(parked.task_path), parked.pk)
    assert resumed is False
    after = TaskExecution.objects.get(pk=parked.pk)
    assert after.status == "pending"
    assert after.engine_run_id == parked.engine_run_id
    assert after.available_at > timezone.now()  # due again at the next re-check
