"""The database task backend: the project's own database is the queue.

`enqueue` makes an accepted execution available to workers (at once, or at `run_after`; one
statement on PostgreSQL, NOTIFY included); workers (`manage.py runworker`, or the embedded worker
thread) claim one at a time, most urgent priority first, with `SELECT … FOR UPDATE SKIP LOCKED`
on PostgreSQL, hold a lease they renew while it runs, and `apps.tasks.lifecycle` applies
retries with backoff, timeouts and cancellation. An attempt whose lease expires (its worker was
killed) is retried by whichever worker notices first.
"""

from django.db import connection
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.base import TaskResult, TaskResultStatus
from django.utils import timezone

from apps.tasks import lifecycle
from apps.tasks.backends.base import SfpTask
from apps.tasks.models import TaskExecution, TaskStatus

_STATUS = {
    TaskStatus.PENDING: TaskResultStatus.READY,
    TaskStatus.ACTIVE: TaskResultStatus.RUNNING,
    TaskStatus.COMPLETED: TaskResultStatus.SUCCESSFUL,
    TaskStatus.FAILED: TaskResultStatus.FAILED,
    TaskStatus.CANCELLED: TaskResultStatus.FAILED,
}


class DatabaseBackend(BaseTaskBackend):
    task_class = SfpTask
    supports_defer = True
    supports_priority = True
    supports_get_result = True

    def enqueue(self, task, args, kwargs):
        self.validate_task(task)
        operation_id = args[0]
        available_at = task.run_after or timezone.now()
        if connection.vendor == "postgresql":
            notify = task.run_after is None  # a deferred run is found by polling when due
            queued = self._queue_and_notify(operation_id, available_at, notify=notify)
            if queued is not None:
                return self._result(task, queued)
        else:
            lifecycle.mark_queued(operation_id, available_at=available_at)
        return self._result(task, TaskExecution.objects.get(pk=operation_id))

    @staticmethod
    def _queue_and_notify(operation_id: str, available_at, *, notify: bool):
        """One statement: make the pending execution available, wake idle workers (`NOTIFY`,
        delivered at commit, so never before the row is visible) and read back what the
        result needs. None when the execution is no longer pending (nothing was queued)."""
        table = connection.ops.quote_name(TaskExecution._meta.db_table)
        columns = ["operation_id", "status", "created_at", "started_at", "finished_at", "worker_id"]
        wake = ", pg_notify('sfp_tasks', '')" if notify else ""
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH queued AS (UPDATE {table} SET available_at = %s "  # noqa: S608 - table name from the model
                f"WHERE operation_id = %s AND status = %s RETURNING {', '.join(columns)}) "
                f"SELECT queued.*{wake} FROM queued",
                [available_at, operation_id, TaskStatus.PENDING],
            )
            row = cursor.fetchone()
        if row is None:
            return None
        return TaskExecution(**dict(zip(columns, row[: len(columns)], strict=True)))

    def get_result(self, result_id):
        from django.utils.module_loading import import_string

        execution = TaskExecution.objects.get(pk=result_id)
        return self._result(import_string(execution.task_path), execution)

    def _result(self, task, execution: TaskExecution) -> TaskResult:
        return TaskResult(
            task=task,
            id=execution.operation_id,
            status=_STATUS[execution.status],
            enqueued_at=execution.created_at,
            started_at=execution.started_at,
            finished_at=execution.finished_at,
            last_attempted_at=execution.started_at,
            args=[execution.operation_id],
            kwargs={},
            backend=self.alias,
            errors=[],
            worker_ids=[execution.worker_id] if execution.worker_id else [],
        )

    def health_check(self) -> None:
        TaskExecution.objects.only("operation_id").first()
