"""Every operation declared once with django.tasks, carrying its policy (pool, retries, backoff,
timeout). Each function is a thin wrapper around `apps.tasks.execution.run_operation`."""

from django.tasks import task

from apps.tasks.execution import run_operation
from apps.tasks.models import Pool


@task(
    queue_name=Pool.STANDARD, task_type="build", retries=1, backoff_seconds=30, timeout_seconds=3600
)
def build(operation_id: str) -> dict:
    return run_operation(operation_id)


@task(
    queue_name=Pool.STANDARD,
    task_type="quickbuild",
    retries=1,
    backoff_seconds=30,
    timeout_seconds=1800,
)
def quickbuild(operation_id: str) -> dict:
    return run_operation(operation_id)


@task(
    queue_name=Pool.STANDARD,
    task_type="install",
    retries=2,
    backoff_seconds=60,
    timeout_seconds=3600,
)
def install(operation_id: str) -> dict:
    return run_operation(operation_id)


@task(
    queue_name=Pool.STANDARD,
    task_type="validate",
    retries=1,
    backoff_seconds=60,
    timeout_seconds=5400,
)
def validate(operation_id: str) -> dict:
    return run_operation(operation_id)


@task(queue_name=Pool.LONG_RUNNING, task_type="release", retries=0, timeout_seconds=4 * 3600)
def release(operation_id: str) -> dict:
    return run_operation(operation_id)


@task(
    queue_name=Pool.LONG_RUNNING,
    task_type="pool-prepare",
    retries=1,
    backoff_seconds=120,
    timeout_seconds=4 * 3600,
)
def pool_prepare(operation_id: str) -> dict:
    return run_operation(operation_id)


@task(
    queue_name=Pool.LONG_RUNNING,
    task_type="apextests",
    retries=1,
    backoff_seconds=60,
    timeout_seconds=3 * 3600,
)
def apextests(operation_id: str) -> dict:
    return run_operation(operation_id)


@task(
    queue_name=Pool.STANDARD,
    task_type="noop",
    retries=2,
    backoff_seconds=0.2,
    backoff_max_seconds=1,
    timeout_seconds=120,
)
def noop(operation_id: str) -> dict:
    return run_operation(operation_id)


DECLARED = {
    t.task_type: t
    for t in (build, quickbuild, install, validate, release, pool_prepare, apextests, noop)
}
