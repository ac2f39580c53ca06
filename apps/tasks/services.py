"""Writes of the tasks app: accepting work, cancelling it, deleting logs.

`task_submit` validates the type and data against the catalogue, records the execution and
enqueues it through django.tasks only after the transaction commits: a rejected request
enqueues nothing, and an accepted one survives a server restart (it is a row first).
"""

from datetime import datetime

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from apps.accounts.audit import audit_event
from apps.accounts.principal import Principal
from apps.core.exceptions import Conflict, Forbidden, InvalidRequest
from apps.core.permissions import requires_role_message
from apps.environments.models import SalesforceOrg
from apps.tasks import lifecycle
from apps.tasks.catalogue import operation
from apps.tasks.models import (
    FINISHED_STATUSES,
    PRIORITY_VALUES,
    Priority,
    ScheduleType,
    TaskExecution,
    TaskLogLine,
    TriggerKind,
)
from apps.tasks.tasks import DECLARED

MAX_RETRIES = 10


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
    priority: str = Priority.LOW,
    schedule_type: str = ScheduleType.IMMEDIATE,
    scheduled_for: datetime | None = None,
    retry_config: dict | None = None,
    request: HttpRequest | None = None,
) -> TaskExecution:
    op = operation(type)
    if not actor.roles & set(op.allowed_roles):
        raise Forbidden(requires_role_message(op.allowed_roles))
    validated = op.validate(data)
    for item in op.orgs(validated):
        username = item["ref"]["username"]
        if not SalesforceOrg.objects.filter(username__iexact=username).exists():
            raise InvalidRequest(
                f"Org {username} is not registered",
                details={
                    "data": [f"Register {username} first (/sfp/api/auth/salesforce/register)."]
                },
            )
    declared = DECLARED[type]
    retries, backoff, backoff_max = _retry_policy(declared, retry_config)
    if schedule_type == ScheduleType.RECURRING:
        raise InvalidRequest(
            "scheduleType recurring is not available yet: submit immediate or scheduled tasks",
            details={"scheduleType": ["immediate or scheduled."]},
        )
    run_after = None
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
            priority=priority,
            pool=declared.pool,
            max_attempts=retries + 1,
            backoff_seconds=backoff,
            backoff_max_seconds=backoff_max,
            timeout_seconds=declared.timeout_seconds,
            schedule_type=schedule_type,
            scheduled_for=run_after,
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
        prepared = declared.using(priority=PRIORITY_VALUES[priority], run_after=run_after)
        transaction.on_commit(lambda: prepared.enqueue(execution.operation_id))
    return execution


def task_cancel(
    *, actor: Principal, execution: TaskExecution, request: HttpRequest | None = None
) -> str:
    if execution.status in FINISHED_STATUSES:
        raise Conflict(f"Task {execution.operation_id} is already {execution.status}")
    is_own = execution.triggered_by_id in (
        str(actor.user.pk),
        actor.token.pk if actor.token else "",
    )
    if not (is_own or actor.roles & {"owner", "application"}):
        raise Forbidden("Only owners, application tokens or the submitter can cancel a task")
    status = lifecycle.cancel(execution.operation_id)
    audit_event(
        "task.cancelled",
        principal=actor,
        request=request,
        target_type="task",
        target_id=execution.operation_id,
        after={"status": status},
    )
    return status


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
