"""Reads behind the dashboard's pages, each bounded to what one page shows.

They build on the domain apps' own reads (`lock_status`, `steps_dto`), so the dashboard shows
exactly what the API answers. Gates are pipeline steps, not work: the task tables leave them out.
"""

from django.db.models import Q

from apps.environments.selectors.environments import environment_lock_states, environments_filtered
from apps.tasks.models import TaskExecution, TaskLogLine, TaskStatus
from apps.tasks.pipelines import GATE_TYPE, PIPELINE_PREFIX, steps_dto

RECENT_TASKS = 50
RECENT_PIPELINES = 20
LOCK_BOARD_ENVIRONMENTS = 200
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


def lock_board() -> list[dict]:
    """Every environment (up to LOCK_BOARD_ENVIRONMENTS) with its lock holder and queue."""
    environments = environments_filtered()[:LOCK_BOARD_ENVIRONMENTS]
    statuses = environment_lock_states(environments)
    return [
        {"environment": environment, "lock": statuses[environment.pk]}
        for environment in environments
    ]
