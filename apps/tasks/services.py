"""Writes of the tasks app: accepting work, cancelling it, deleting logs.

`task_submit` validates the type and data against the catalogue, records the execution and
enqueues it through django.tasks only after the transaction commits: a rejected request
enqueues nothing, and an accepted one survives a server restart (it is a row first).
"""

from datetime import datetime, timedelta

import structlog
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.tasks import task_backends
from django.utils import timezone

from apps.accounts.audit import audit_event
from apps.accounts.principal import Principal
from apps.accounts.roles import PRIVILEGED, is_privileged, require_human_owner
from apps.core.exceptions import Conflict, Forbidden, InvalidRequest
from apps.core.permissions import requires_role_message
from apps.environments.models import Category, Environment, SalesforceOrg
from apps.environments.services import locks
from apps.tasks import lifecycle
from apps.tasks.catalogue import operation
from apps.tasks.models import (
    FINISHED_STATUSES,
    PRIORITY_VALUES,
    Priority,
    ScheduleType,
    TaskExecution,
    TaskLogLine,
    TaskStatus,
    TriggerKind,
)

logger = structlog.get_logger(__name__)

MAX_RETRIES = 10


def resolve_environment(actor: Principal | None, data: dict) -> dict:
    """A task aimed at an environment deploys to that environment's org (and holds its lock)."""
    name = data.get("environment")
    if not name:
        return data
    environment = (
        Environment.objects.select_related("org")
        .filter(project__identifier=data["repository"], name=name)
        .first()
    )
    if environment is None:
        raise InvalidRequest(
            f"Environment {name} not found in {data['repository']}",
            details={"data.environment": ["Unknown environment."]},
        )
    if environment.org is None:
        raise InvalidRequest(f"Environment {name} has no registered org")
    if actor is not None and environment.category == Category.RELEASE and not is_privileged(actor):
        raise Forbidden(requires_role_message(PRIVILEGED))
    return data | {"targetOrg": environment.org.username}


def _trigger(actor: Principal) -> dict:
    if actor.is_token:
        return {
            "triggered_by_kind": TriggerKind.TOKEN,
            "triggered_by_id": actor.token.pk,
            "triggered_by_label": actor.token.name,
        }
    return {
        "triggered_by_kind": TriggerKind.USER,
        "triggered_by_id": str(actor.user.pk),
        "triggered_by_label": actor.user.email,
    }


def _retry_policy(declared, retry_config: dict | None) -> tuple[int, float, float]:
    retries, backoff, backoff_max = (
        declared.retries,
        declared.backoff_seconds,
        declared.backoff_max_seconds,
    )
    if retry_config:
        if "maxRetries" in retry_config:
            retries = retry_config["maxRetries"]
        if "backoffSeconds" in retry_config:
            backoff = retry_config["backoffSeconds"]
        if not (isinstance(retries, int) and 0 <= retries <= MAX_RETRIES):
            raise InvalidRequest(
                f"retryConfig.maxRetries must be 0..{MAX_RETRIES}",
                details={"retryConfig.maxRetries": [f"0..{MAX_RETRIES}."]},
            )
        if not (isinstance(backoff, int | float) and 0 <= backoff <= 3600):
            raise InvalidRequest(
                "retryConfig.backoffSeconds must be 0..3600",
                details={"retryConfig.backoffSeconds": ["0..3600."]},
            )
    return retries, float(backoff), float(backoff_max)


def task_submit(
    *,
    actor: Principal,
    type: str,
    data,
    priority: str = Priority.LOW.label,
    schedule_type: str = ScheduleType.IMMEDIATE,
    scheduled_for: datetime | None = None,
    retry_config: dict | None = None,
    recurrence_config: dict | None = None,
    request: HttpRequest | None = None,
) -> TaskExecution:
    op = operation(type)
    if not actor.roles & set(op.allowed_roles):
        raise Forbidden(requires_role_message(op.allowed_roles))
    validated = resolve_environment(actor, op.validate(data))
    for item in op.orgs(validated):
        username = item["ref"]["username"]
        if not SalesforceOrg.objects.filter(username__iexact=username).exists():
            raise InvalidRequest(
                f"Org {username} is not registered",
                details={
                    "data": [f"Register {username} first (/sfp/api/auth/salesforce/register)."]
                },
            )
    declared = op.task
    retries, backoff, backoff_max = _retry_policy(declared, retry_config)
    recurrence = (
        _validated_recurrence(recurrence_config)
        if schedule_type == ScheduleType.RECURRING
        else None
    )
    run_after = None
    if (
        schedule_type == ScheduleType.RECURRING
        and scheduled_for
        and scheduled_for <= timezone.now()
    ):
        raise InvalidRequest(
            "scheduledFor must be in the future", details={"scheduledFor": ["Future."]}
        )
    if schedule_type == ScheduleType.SCHEDULED:
        if scheduled_for is None:
            raise InvalidRequest(
                "scheduledFor is required when scheduleType is scheduled",
                details={"scheduledFor": ["Required."]},
            )
        if scheduled_for <= timezone.now():
            raise InvalidRequest(
                "scheduledFor must be in the future", details={"scheduledFor": ["Future."]}
            )
        run_after = scheduled_for

    with transaction.atomic():
        execution = TaskExecution.objects.create(
            type=type,
            data=validated,
            priority=PRIORITY_VALUES[priority],
            pool=declared.pool,
            max_attempts=retries + 1,
            backoff_seconds=backoff,
            backoff_max_seconds=backoff_max,
            timeout_seconds=declared.timeout_seconds,
            schedule_type=schedule_type,
            scheduled_for=run_after or scheduled_for,
            recurrence=recurrence,
            next_run_at=(scheduled_for or timezone.now()) if recurrence else None,
            task_path=declared.module_path,
            **_trigger(actor),
        )
        audit_event(
            "task.submitted",
            principal=actor,
            request=request,
            target_type="task",
            target_id=execution.operation_id,
            after={"type": type, "priority": priority, "scheduleType": schedule_type},
        )
        if recurrence is None:  # a recurring definition is never run itself: its instances are
            prepared = declared.using(priority=execution.priority, run_after=run_after)
            transaction.on_commit(lambda: prepared.enqueue(execution.operation_id))
    return execution


MIN_RECURRENCE_SECONDS = 1


def _validated_recurrence(config: dict | None) -> dict:
    if not isinstance(config, dict) or "intervalSeconds" not in config:
        raise InvalidRequest(
            "recurrenceConfig.intervalSeconds is required for recurring tasks",
            details={"recurrenceConfig.intervalSeconds": ["Required."]},
        )
    interval = config["intervalSeconds"]
    if not isinstance(interval, int) or not MIN_RECURRENCE_SECONDS <= interval <= 31 * 86400:
        raise InvalidRequest(
            "recurrenceConfig.intervalSeconds must be a whole number of seconds up to 31 days",
            details={"recurrenceConfig.intervalSeconds": ["1..2678400."]},
        )
    max_runs = config.get("maxRuns")
    if max_runs is not None and (not isinstance(max_runs, int) or max_runs < 1):
        raise InvalidRequest(
            "recurrenceConfig.maxRuns must be a positive integer",
            details={"recurrenceConfig.maxRuns": ["Positive integer."]},
        )
    return {"intervalSeconds": interval, "maxRuns": max_runs}


def recurring_spawn_due() -> int:
    """Start the runs of recurring definitions that have come due (called by workers).

    A conditional update on `next_run_at` makes each run start exactly once, however many
    workers call this at the same time; missed runs (all workers down) are skipped, not piled up.
    """
    now = timezone.now()
    spawned = 0
    due = TaskExecution.objects.filter(
        schedule_type=ScheduleType.RECURRING,
        recurring_origin__isnull=True,
        status=TaskStatus.PENDING,
        next_run_at__lte=now,
    )
    for definition in due:
        interval = timedelta(seconds=definition.recurrence["intervalSeconds"])
        following = definition.next_run_at + interval
        while following <= now:
            following += interval
        with transaction.atomic():
            won = TaskExecution.objects.filter(
                pk=definition.pk, status=TaskStatus.PENDING, next_run_at=definition.next_run_at
            ).update(next_run_at=following, runs_started=F("runs_started") + 1)
            if not won:
                continue
            instance = TaskExecution.objects.create(
                type=definition.type,
                data=definition.data,
                priority=definition.priority,
                pool=definition.pool,
                max_attempts=definition.max_attempts,
                backoff_seconds=definition.backoff_seconds,
                backoff_max_seconds=definition.backoff_max_seconds,
                timeout_seconds=definition.timeout_seconds,
                task_path=definition.task_path,
                recurring_origin=definition,
                triggered_by_kind=TriggerKind.SCHEDULE,
                triggered_by_id=definition.operation_id,
                triggered_by_label=definition.triggered_by_label,
            )
            declared = operation(definition.type).task.using(priority=definition.priority)
            transaction.on_commit(lambda d=declared, i=instance: d.enqueue(i.operation_id))
            max_runs = definition.recurrence.get("maxRuns")
            if max_runs and definition.runs_started + 1 >= max_runs:
                lifecycle.finish_recurring(definition.operation_id, status=TaskStatus.COMPLETED)
        spawned += 1
    return spawned


def task_stop_recurring(
    *, actor: Principal, execution: TaskExecution, request: HttpRequest | None = None
) -> None:
    if execution.schedule_type != ScheduleType.RECURRING or execution.recurring_origin_id:
        raise InvalidRequest(f"Task {execution.operation_id} is not a recurring task")
    if not lifecycle.finish_recurring(execution.operation_id, status=TaskStatus.CANCELLED):
        raise Conflict(f"Recurring task {execution.operation_id} is already {execution.status}")
    audit_event(
        "task.recurrence_stopped",
        principal=actor,
        request=request,
        target_type="task",
        target_id=execution.operation_id,
        after={"runsStarted": execution.runs_started},
    )


def task_cancel(
    *, actor: Principal, execution: TaskExecution, request: HttpRequest | None = None
) -> str:
    if execution.status in FINISHED_STATUSES:
        raise Conflict(f"Task {execution.operation_id} is already {execution.status}")
    is_own = execution.triggered_by_id in (
        str(actor.user.pk),
        actor.token.pk if actor.token else "",
    )
    if not (is_own or is_privileged(actor)):
        raise Forbidden("Only owners, application tokens or the submitter can cancel a task")
    if execution.schedule_type == ScheduleType.RECURRING and not execution.recurring_origin_id:
        # As published: cancelling a recurring task cancels its current run, not the recurrence.
        running = execution.recurring_instances.exclude(status__in=FINISHED_STATUSES)
        if not running.exists():
            raise Conflict(f"Recurring task {execution.operation_id} has no run in progress")
        status = TaskStatus.CANCELLED
        for instance in running:
            status = lifecycle.cancel(instance.operation_id)
    else:
        status = lifecycle.cancel(execution.operation_id)
    locks.locks_release_for_operation(execution.operation_id)  # a cancelled task waits for nothing
    _cancel_engine_run(execution)
    audit_event(
        "task.cancelled",
        principal=actor,
        request=request,
        target_type="task",
        target_id=execution.operation_id,
        after={"status": status},
    )
    return status


def _cancel_engine_run(execution: TaskExecution) -> None:
    """Tell an engine (Hatchet) too; the attempt also sees the database flag on its own."""
    backend = task_backends["default"]
    cancel_run = getattr(backend, "cancel_run", None)
    if execution.engine_run_id and callable(cancel_run):
        try:
            cancel_run(execution.engine_run_id)
        except Exception:  # noqa: BLE001 - the database flag still stops the attempt
            logger.warning("engine_cancel_failed", operation_id=execution.operation_id)


@transaction.atomic
def task_logs_delete(
    *, actor: Principal, execution: TaskExecution, request: HttpRequest | None = None
) -> int:
    deleted, _ = TaskLogLine.objects.filter(execution=execution).delete()
    audit_event(
        "task.logs_deleted",
        principal=actor,
        request=request,
        target_type="task",
        target_id=execution.operation_id,
        before={"lines": deleted},
    )
    return deleted


def pipeline_submit(
    *,
    actor: Principal,
    type: str,
    data,
    priority: str = Priority.LOW.label,
    request: HttpRequest | None = None,
) -> TaskExecution:
    """Accept a pipeline: validate every step's input up front, then let `advance` run it."""
    from apps.tasks import pipelines

    pipeline = pipelines.definition(type)
    if not actor.roles & set(pipeline.allowed_roles):
        raise Forbidden(requires_role_message(pipeline.allowed_roles))
    validated = pipeline.validate(data)
    for step in pipeline.steps(validated):
        for item in operation(step.task_type).orgs(step.data) if step.kind == "task" else []:
            username = item["ref"]["username"]
            if not SalesforceOrg.objects.filter(username__iexact=username).exists():
                raise InvalidRequest(
                    f"Org {username} is not registered", details={"data.targets": [username]}
                )
    with transaction.atomic():
        parent = TaskExecution.objects.create(
            type=pipelines.PIPELINE_PREFIX + type,
            data=validated,
            priority=PRIORITY_VALUES[priority],
            task_path="",
            **_trigger(actor),
        )
        audit_event(
            "pipeline.submitted",
            principal=actor,
            request=request,
            target_type="task",
            target_id=parent.operation_id,
            after={"type": type},
        )
        transaction.on_commit(lambda: pipelines.advance(parent.operation_id))
    return parent


def pipeline_decide(
    *,
    actor: Principal,
    parent: TaskExecution,
    step: str | None,
    approved: bool,
    comment: str = "",
    request: HttpRequest | None = None,
) -> TaskExecution:
    """An owner approves or rejects the gate a pipeline waits at."""
    from apps.tasks import pipelines

    require_human_owner(actor)
    gate = pipelines.decide_gate(
        parent=parent, step_name=step, approved=approved, by=actor.user.email, comment=comment
    )
    audit_event(
        "pipeline.gate_approved" if approved else "pipeline.gate_rejected",
        principal=actor,
        request=request,
        target_type="task",
        target_id=parent.operation_id,
        after={"step": gate.step, "comment": comment},
    )
    return gate


def pipeline_retry_step(
    *, actor: Principal, parent: TaskExecution, step: str, request: HttpRequest | None = None
) -> TaskExecution:
    from apps.tasks import pipelines

    child = pipelines.retry_step(parent=parent, step_name=step)
    audit_event(
        "pipeline.step_retried",
        principal=actor,
        request=request,
        target_type="task",
        target_id=parent.operation_id,
        after={"step": step},
    )
    return child
