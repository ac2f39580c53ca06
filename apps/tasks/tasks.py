"""The django.tasks functions of the catalogue's operations, derived from it: one per
`apps.tasks.catalogue.Operation`, named after it (`pool-prepare` → `pool_prepare`), each a thin
wrapper around `apps.tasks.execution.run_operation`.

Nothing is declared here: pool, retries, backoff and timeout are read from the operation by the
task (`SfpTask`), so both backends and the catalogue see one declaration. `DECLARED` maps each task
type to its task (executions store the task's import path, `task_path`).
"""

from django.tasks import task

from apps.tasks.catalogue import OPERATIONS, Operation
from apps.tasks.execution import run_operation


def _task_of(op: Operation):
    def run(operation_id: str) -> dict:
        return run_operation(operation_id)

    # A module-level name, so the task's import path (stored on each execution) resolves.
    run.__name__ = run.__qualname__ = op.task_function_name
    run.__module__ = __name__
    run.__doc__ = op.description
    return task(queue_name=op.pool, task_type=op.name)(run)


DECLARED = {name: _task_of(op) for name, op in OPERATIONS.items()}
globals().update({declared.func.__name__: declared for declared in DECLARED.values()})
