"""One attempt path: the execution the backend read is handed down to the task, not read again,
and the attempt gets its own row."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.tasks.attempts import run_attempt
from apps.tasks.execution import AttemptContext, attempt_context, run_operation
from apps.tasks.models import TaskAttempt, TaskExecution
from tests.tasks.conftest import create_execution

pytestmark = pytest.mark.django_db


def _idle_watch(context, stop):
    stop.wait()


def test_the_task_reads_the_execution_handed_down_not_the_database(owner):
    execution = create_execution(owner, status="active")
    token = attempt_context(AttemptContext(worker_id="w", execution=execution))
    try:
        with CaptureQueriesContext(connection) as queries:
            assert run_operation(execution.operation_id) == {"ok": True, "attempt": 0}
    finally:
        token.var.reset(token)
    assert len(queries) == 0


def test_outside_an_attempt_the_task_reads_its_execution(owner):
    execution = create_execution(owner, status="active")
    assert run_operation(execution.operation_id) == {"ok": True, "attempt": 0}


def test_an_attempt_records_its_row_from_start_to_end(owner):
    execution = create_execution(owner)
    TaskExecution.objects.filter(pk=execution.pk).update(status="active", attempts=1, worker_id="w")
    execution.refresh_from_db()
    outcome = run_attempt(execution, worker_id="w", watch=_idle_watch)
    assert outcome.status == "completed"
    row = TaskAttempt.objects.get(execution=execution)
    assert (row.number, row.worker_id, row.status, row.error) == (1, "w", "completed", None)
    assert row.started_at <= row.finished_at
