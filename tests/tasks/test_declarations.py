"""One operation, one declaration: the django.tasks task of every catalogue operation is derived
from it and reads its policy from it (no second registry to keep in step)."""

import pytest
from django.utils.module_loading import import_string

from apps.tasks.catalogue import OPERATIONS
from apps.tasks.tasks import DECLARED


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_each_operation_has_one_task_reading_its_policy(name):
    op = OPERATIONS[name]
    declared = op.task
    assert declared.operation is op
    # The import path stored on executions resolves to the same task.
    assert import_string(declared.module_path) is declared
    assert declared.queue_name == declared.pool == op.pool
    assert (
        declared.retries,
        declared.backoff_seconds,
        declared.backoff_max_seconds,
        declared.timeout_seconds,
    ) == (op.retries, op.backoff_seconds, op.backoff_max_seconds, op.timeout_seconds)


def test_there_is_a_task_for_every_operation_and_no_other():
    assert set(DECLARED) == set(OPERATIONS)
