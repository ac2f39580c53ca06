"""Reads of task executions and their logs, in the published shapes."""

from datetime import datetime

from django.db.models import QuerySet

from apps.core.exceptions import InvalidRequest, NotFound
from apps.core.pagination import Keyset, Page, keyset_page
from apps.tasks.models import PRIORITY_NAMES, TaskExecution, TaskLogLine


def execution_get(operation_id: str) -> TaskExecution:
    execution = TaskExecution.objects.filter(pk=operation_id).first()
    if execution is None:
        raise NotFound(f"Task {operation_id} not found")
    return execution


def executions_filtered(
    *,
    status: str | None = None,
    type: str | None = None,
    triggered_by: str | None = None,
) -> QuerySet[TaskExecution]:
    executions = TaskExecution.objects.all()
    if status:
        executions = executions.filter(status=status)
    if type:
        executions = executions.filter(type=type)
    if triggered_by:
        executions = executions.filter(triggered_by_label__iexact=triggered_by) | executions.filter(
            triggered_by_id=triggered_by
        )
    return executions.order_by("-created_at", "-operation_id")


# Newest first; the index tasks_list_keyset (created_at, operation_id) serves every page.
EXECUTION_KEYSET = Keyset("created_at", "operation_id")


def executions_page(
    executions: QuerySet[TaskExecution], *, cursor: str | None, offset: int, limit: int
) -> Page:
    """A page by cursor (ours; flat at any depth) or, for the published parameters, by offset
    (cost grows with the offset). Either way `next_cursor` continues from the page's last row."""
    if cursor and offset:
        raise InvalidRequest(
            "cursor and offset cannot be combined", details={"offset": ["Not with cursor."]}
        )
    if not offset:
        return keyset_page(executions, EXECUTION_KEYSET, cursor=cursor, limit=limit)
    rows = list(executions[offset : offset + limit + 1])
    next_cursor = EXECUTION_KEYSET.encode(rows[limit - 1]) if len(rows) > limit else None
    return Page(rows[:limit], next_cursor)


def latest_recurring_instance(execution: TaskExecution) -> TaskExecution | None:
    if execution.recurring_origin_id or execution.schedule_type != "recurring":
        return None
    return execution.recurring_instances.order_by("-created_at").first()


def status_dto(execution: TaskExecution) -> dict:
    return {
        "operationId": execution.operation_id,
        "type": execution.type,
        "status": execution.status,
        "progress": execution.progress,
        "currentStep": execution.current_step or None,
        "error": execution.error,
        "attempts": execution.attempts,
    }


def execution_dto(execution: TaskExecution) -> dict:
    return status_dto(execution) | {
        "data": execution.data,
        "result": execution.result,
        "pool": execution.pool,
        "priority": PRIORITY_NAMES.get(execution.priority, str(execution.priority)),
        "maxAttempts": execution.max_attempts,
        "scheduleType": execution.schedule_type,
        "scheduledFor": execution.scheduled_for.isoformat() if execution.scheduled_for else None,
        "recurrence": execution.recurrence,
        "nextRunAt": execution.next_run_at.isoformat() if execution.next_run_at else None,
        "recurringOriginId": execution.recurring_origin_id,
        "parentId": execution.parent_id,
        "engineRunId": execution.engine_run_id or None,
        "triggeredBy": {
            "kind": execution.triggered_by_kind,
            "id": execution.triggered_by_id,
            "label": execution.triggered_by_label,
        },
        "createdAt": execution.created_at.isoformat(),
        "startedAt": execution.started_at.isoformat() if execution.started_at else None,
        "finishedAt": execution.finished_at.isoformat() if execution.finished_at else None,
    }


def log_lines(
    execution: TaskExecution, *, since: datetime | None = None, until: datetime | None = None
) -> QuerySet[TaskLogLine]:
    lines = TaskLogLine.objects.filter(execution=execution)
    if since:
        lines = lines.filter(logged_at__gte=since)
    if until:
        lines = lines.filter(logged_at__lte=until)
    return lines.order_by("seq")
