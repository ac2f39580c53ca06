"""Reads of task executions, their attempts and their logs, in the published shapes: the API,
the dashboard and the live socket all read executions here."""

from datetime import datetime

from django.db.models import Q, QuerySet

from apps.core.exceptions import InvalidRequest, NotFound
from apps.core.pagination import Keyset, Page, keyset_page
from apps.tasks.models import PRIORITY_NAMES, TaskAttempt, TaskExecution, TaskLogLine, TaskStatus
from apps.tasks.pipelines import GATE_TYPE, PIPELINE_PREFIX, steps_dto


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


def result_dto(execution: TaskExecution) -> dict:
    """The published result (status fields and `result`) plus `attemptHistory`: one entry per
    attempt, so the error of an attempt that was retried stays visible."""
    return status_dto(execution) | {
        "result": execution.result,
        "attemptHistory": [attempt_dto(row) for row in attempts_of(execution)],
    }


def attempts_of(execution: TaskExecution) -> list[TaskAttempt]:
    """Every attempt of an execution, first first (each with its own worker, times and error)."""
    return list(TaskAttempt.objects.filter(execution=execution).order_by("number"))


def attempt_dto(attempt: TaskAttempt) -> dict:
    return {
        "number": attempt.number,
        "workerId": attempt.worker_id,
        "startedAt": attempt.started_at.isoformat(),
        "finishedAt": attempt.finished_at.isoformat() if attempt.finished_at else None,
        "status": attempt.status or "active",
        "exitCode": attempt.exit_code,
        "error": attempt.error,
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


# --- what the dashboard and the live socket show (gates are pipeline steps, not work) --------

RECENT_TASKS = 50
RECENT_PIPELINES = 20
LOG_TAIL_LINES = 500

RUNNING_STATUSES = (TaskStatus.PENDING, TaskStatus.ACTIVE)


def _listed_tasks():
    return TaskExecution.objects.exclude(type=GATE_TYPE)


def overview_tasks() -> list[TaskExecution]:
    """Running tasks first, then the most recent finished ones (at most RECENT_TASKS of each)."""
    running = _listed_tasks().filter(status__in=RUNNING_STATUSES).order_by("-created_at")
    finished = _listed_tasks().exclude(status__in=RUNNING_STATUSES).order_by("-created_at")
    return list(running[:RECENT_TASKS]) + list(finished[:RECENT_TASKS])


HISTORY_PAGE_SIZE = 25


def task_history(*, status: str = "", type_: str = "", search: str = ""):
    """Every task (gates left out), newest first, optionally by status, type and an operation id
    or trigger prefix; the caller pages it."""
    found = _listed_tasks().order_by("-created_at")
    if status:
        found = found.filter(status=status)
    if type_:
        found = found.filter(type=type_)
    if search:
        found = found.filter(
            Q(operation_id__startswith=search.lower()) | Q(triggered_by_label__istartswith=search)
        )
    return found


def task_types() -> list[str]:
    return sorted(_listed_tasks().values_list("type", flat=True).distinct())


def overview_task(operation_id: str) -> TaskExecution | None:
    """One task as the overview lists it, or None when it is not listed there (a gate)."""
    return _listed_tasks().filter(pk=operation_id).first()


def log_tail(execution: TaskExecution) -> list[TaskLogLine]:
    """The last LOG_TAIL_LINES lines of a task's log, oldest first."""
    newest_first = TaskLogLine.objects.filter(execution=execution).order_by("-seq")
    return list(reversed(newest_first[:LOG_TAIL_LINES]))


def recent_pipelines() -> list[tuple[TaskExecution, list[dict]]]:
    """The latest pipelines with their steps (children fetched in one query for all)."""
    parents = (
        TaskExecution.objects.filter(type__startswith=PIPELINE_PREFIX)
        .prefetch_related("children")
        .order_by("-created_at")[:RECENT_PIPELINES]
    )
    return [(parent, steps_dto(parent)) for parent in parents]


def execution_live_state(operation_id: str) -> tuple[int, dict] | None:
    """The live socket's snapshot of a task: its event sequence number and state, or None."""
    execution = TaskExecution.objects.filter(pk=operation_id).first()
    if execution is None:
        return None
    state = status_dto(execution)
    return execution.event_seq, {
        key: state[key] for key in ("operationId", "status", "progress", "currentStep", "error")
    }


def log_lines_between(
    operation_id: str, *, after: int, up_to: int, limit: int
) -> list[TaskLogLine]:
    """At most `limit` log lines with after < seq <= up_to, in order (a socket's catch-up)."""
    lines = TaskLogLine.objects.filter(execution_id=operation_id, seq__gt=after, seq__lte=up_to)
    return list(lines.order_by("seq")[:limit])
