"""The one owner of task-execution status: every transition happens here.

Transitions are conditional UPDATEs (`WHERE status IN (…)`), so two processes can never both move
an execution, and each one leaves a structured log line. The worker wraps each attempt in
`attempt(...)`, which decides between completed, cancelled, a retry with exponential backoff, or
failed once the attempts are spent. `reap_expired_leases` does the same for attempts whose worker
died (its lease stopped being renewed).

Fencing: the end of an attempt moves the execution only while it still belongs to that attempt
(same `worker_id`, same `attempts` number), so a worker that lost its lease can never end or
retry its successor's attempt; leases are set and compared on the database's clock, and the
reaper moves an execution only while its lease is still lapsed (a renewal that slipped in
between wins). The worker side of the rule (kill the CLI before the lease can lapse) lives in
`apps.tasks.worker`.
"""

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone

from apps.core.events import publish
from apps.tasks.models import (
    FINISHED_STATUSES,
    TaskAttempt,
    TaskExecution,
    TaskLogLine,
    TaskStatus,
    TriggerKind,
)

logger = structlog.get_logger("sfpserver.tasks")


class TaskCancelled(Exception):
    """Raised inside an attempt when cancellation was requested."""


class TaskFailed(Exception):
    """An attempt failed with a message (and optional detail) meant for the user."""

    def __init__(
        self, message: str, *, stack: str = "", retryable: bool = True, exit_code: int | None = None
    ):
        super().__init__(message)
        self.message = message
        self.stack = stack
        self.retryable = retryable
        self.exit_code = exit_code


def _move(operation_id: str, *, from_statuses, to: str, fence: Q | None = None, **fields) -> bool:
    """The single place a status is written. Returns False when another process got there first
    (or, with `fence`, when the execution no longer matches it: another attempt owns it)."""
    now = timezone.now()
    if to in FINISHED_STATUSES:
        fields.setdefault("finished_at", now)
        fields.setdefault("lease_expires_at", None)
    rows = TaskExecution.objects.filter(operation_id=operation_id, status__in=list(from_statuses))
    if fence is not None:
        rows = rows.filter(fence)
    # One transaction for the change and its event number: the row lock taken by the UPDATE
    # keeps concurrent changes of this execution in the order of their numbers.
    with transaction.atomic(savepoint=False):
        moved = rows.update(status=to, updated_at=now, **fields)
        if moved:
            logger.info("task.status", operation_id=operation_id, status=to)
            publish_task_event(operation_id, "task.status", {"status": to})
    return bool(moved)


def _reserve_event_seqs(operation_id: str, count: int) -> tuple[int, list[str]]:
    """Take the next `count` event numbers of an execution (call inside its transaction).

    Returns the last number taken and the groups its events go to: the execution's own, the
    `tasks` feed, and the feed of whoever started it (a user or an application token)."""
    table = connection.ops.quote_name(TaskExecution._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET event_seq = event_seq + %s WHERE operation_id = %s "  # noqa: S608 - table name from the model
            "RETURNING event_seq, triggered_by_kind, triggered_by_id",
            [count, operation_id],
        )
        row = cursor.fetchone()
    if row is None:
        raise TaskExecution.DoesNotExist(operation_id)
    last, trigger_kind, trigger_id = row
    groups = [f"task.{operation_id}", "tasks"]
    if trigger_kind in (TriggerKind.USER, TriggerKind.TOKEN) and trigger_id:
        groups.append(f"{trigger_kind}.{trigger_id}")
    return last, groups


def publish_task_event(
    operation_id: str, event_type: str, payload: dict, *, extra_groups: tuple[str, ...] = ()
) -> int:
    """Number a live event of an execution and publish it after the transaction commits."""
    with transaction.atomic(savepoint=False):
        seq, groups = _reserve_event_seqs(operation_id, 1)
        publish(
            [*groups, *extra_groups], event_type, {"operationId": operation_id} | payload, seq=seq
        )
    return seq


def append_log_lines(operation_id: str, lines: list[TaskLogLine]) -> None:
    """Store a batch of output lines, numbered in the execution's event sequence, and publish
    them as one `task.log` event."""
    if not lines:
        return
    with transaction.atomic(savepoint=False):
        last, groups = _reserve_event_seqs(operation_id, len(lines))
        for offset, line in enumerate(lines, start=last - len(lines) + 1):
            line.seq = offset
        TaskLogLine.objects.bulk_create(lines)
        publish(
            groups,
            "task.log",
            {"operationId": operation_id, "lines": [log_line_dto(line) for line in lines]},
            seq=last,
        )


def log_line_dto(line: TaskLogLine) -> dict:
    return {
        "seq": line.seq,
        "stream": line.stream,
        "message": line.message,
        "timestamp": line.logged_at.isoformat(),
    }


def backoff_delay(execution: TaskExecution, attempt: int) -> float:
    return min(execution.backoff_max_seconds, execution.backoff_seconds * 2 ** max(0, attempt - 1))


def attempt_fence(execution: TaskExecution) -> Q:
    """The execution is still in the attempt this object was read in."""
    return Q(worker_id=execution.worker_id, attempts=execution.attempts)


def attempt_opened(execution: TaskExecution) -> None:
    """Record the start of the attempt the execution is in (its `attempts` number). Idempotent:
    an attempt is opened once however many times its start is reported."""
    TaskAttempt.objects.get_or_create(
        execution_id=execution.operation_id,
        number=execution.attempts,
        defaults={"worker_id": execution.worker_id, "started_at": timezone.now()},
    )


def _attempt_closed(
    execution: TaskExecution, status: str, *, error: dict | None = None, exit_code=None
) -> None:
    """Record how the attempt the execution was read in ended (its row keeps its own error)."""
    TaskAttempt.objects.filter(
        execution_id=execution.operation_id, number=execution.attempts, finished_at__isnull=True
    ).update(finished_at=timezone.now(), status=status, error=error, exit_code=exit_code)


def _fail_or_retry(
    execution: TaskExecution,
    message: str,
    stack: str,
    retryable: bool,
    *,
    engine_schedules_retries: bool = False,
    fence: Q | None = None,
    exit_code: int | None = None,
) -> str:
    """Retry or fail the attempt; "" when the fence no longer holds (nothing was moved)."""
    fence = attempt_fence(execution) if fence is None else fence
    error = {"message": message, "stack": stack}
    with transaction.atomic(savepoint=False):
        moved_to = _retry_or_fail_move(
            execution, error, retryable, engine_schedules_retries=engine_schedules_retries,
            fence=fence,
        )  # fmt: skip
        if moved_to:
            _attempt_closed(execution, TaskStatus.FAILED, error=error, exit_code=exit_code)
    return moved_to


def _retry_or_fail_move(
    execution: TaskExecution,
    error: dict,
    retryable: bool,
    *,
    engine_schedules_retries: bool,
    fence: Q,
) -> str:
    if retryable and execution.attempts < execution.max_attempts:
        # The database backend schedules the retry itself; an engine (Hatchet) schedules its own.
        available_at = (
            None
            if engine_schedules_retries
            else timezone.now() + timedelta(seconds=backoff_delay(execution, execution.attempts))
        )
        moved = _move(
            execution.operation_id,
            from_statuses=[TaskStatus.ACTIVE],
            to=TaskStatus.PENDING,
            fence=fence,
            error=error,
            available_at=available_at,
            lease_expires_at=None,
            worker_id="",
        )
        return TaskStatus.PENDING if moved else ""
    moved = _move(
        execution.operation_id,
        from_statuses=[TaskStatus.ACTIVE],
        to=TaskStatus.FAILED,
        fence=fence,
        error=error,
    )
    return TaskStatus.FAILED if moved else ""


# --- queue side (database backend) ----------------------------------------------------------


def mark_queued(operation_id: str, *, available_at) -> None:
    TaskExecution.objects.filter(operation_id=operation_id, status=TaskStatus.PENDING).update(
        available_at=available_at
    )


def claim_next(*, pools: list[str], worker_id: str, lease_seconds: float) -> TaskExecution | None:
    """Take the most urgent ready execution of these pools (highest priority, then the longest
    ready), or None. One row is locked (`SKIP LOCKED`, so slots never queue behind each other)
    and read through the `tasks_claim_order` index; its claim commits before it runs."""
    now = timezone.now()
    ready = TaskExecution.objects.filter(
        status=TaskStatus.PENDING,
        pool__in=pools,
        cancel_requested=False,
        available_at__isnull=False,
        available_at__lte=now,
    ).order_by("-priority", "available_at", "created_at")
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            ready = ready.select_for_update(skip_locked=True)
        chosen = ready.first()
        if chosen is None:
            return None
        claimed = {
            "attempts": chosen.attempts + 1,  # the row is locked: no one else changes it now
            "worker_id": worker_id,
            "started_at": chosen.started_at or now,
            "error": None,
        }
        moved = _move(
            chosen.operation_id,
            from_statuses=[TaskStatus.PENDING],
            to=TaskStatus.ACTIVE,
            lease_expires_at=Now() + timedelta(seconds=lease_seconds),  # the database's clock
            **claimed,
        )
    if not moved:
        return None
    for name, value in claimed.items():
        setattr(chosen, name, value)
    chosen.status = TaskStatus.ACTIVE
    chosen.lease_expires_at = now + timedelta(seconds=lease_seconds)  # approximately; see above
    return chosen


@dataclass
class Lease:
    owned: bool
    cancel_requested: bool


def renew_lease(
    *, operation_id: str, worker_id: str, lease_seconds: float, attempt: int | None = None
) -> Lease:
    """Extend the lease of the attempt (`attempt`: its number) while it is still the owner's."""
    owned = TaskExecution.objects.filter(
        operation_id=operation_id, worker_id=worker_id, status=TaskStatus.ACTIVE
    )
    if attempt is not None:
        owned = owned.filter(attempts=attempt)
    renewed = owned.update(lease_expires_at=Now() + timedelta(seconds=lease_seconds))
    cancel = TaskExecution.objects.filter(operation_id=operation_id, cancel_requested=True).exists()
    return Lease(owned=bool(renewed), cancel_requested=cancel)


def reap_expired_leases() -> int:
    """Attempts whose worker stopped renewing (killed, crashed, lost): retry or fail them.
    Also ends executions whose cancellation arrived while they were between attempts."""
    reaped = 0
    for operation_id in TaskExecution.objects.filter(
        status=TaskStatus.PENDING, cancel_requested=True
    ).values_list("pk", flat=True):
        reaped += _move(operation_id, from_statuses=[TaskStatus.PENDING], to=TaskStatus.CANCELLED)
    expired = TaskExecution.objects.filter(status=TaskStatus.ACTIVE, lease_expires_at__lt=Now())
    for execution in expired:
        # Still this attempt, and still lapsed: a renewal that slipped in between wins.
        fence = attempt_fence(execution) & Q(lease_expires_at__lt=Now())
        if execution.cancel_requested:
            reaped += _end_attempt(execution, TaskStatus.CANCELLED, fence=fence)
        else:
            reaped += bool(
                _fail_or_retry(
                    execution,
                    f"Worker {execution.worker_id or '?'} stopped answering (lease expired)",
                    "",
                    retryable=True,
                    fence=fence,
                )
            )
    return reaped


PARKED_RECHECK_SECONDS = 60


def wait_for_lock(
    operation_id: str, *, reason: str, retry_in_seconds: float = PARKED_RECHECK_SECONDS
) -> bool:
    """A claimed execution whose lock is held elsewhere is parked, saying why: back to pending,
    not claimable until the lock is handed to it (`wake_parked`, called in the granting
    transaction) or, as a safety net, `retry_in_seconds` later. The claim does not count as an
    attempt, and its place in the lock's queue is kept."""
    if TaskExecution.objects.filter(pk=operation_id, cancel_requested=True).exists():
        return _move(operation_id, from_statuses=[TaskStatus.ACTIVE], to=TaskStatus.CANCELLED)
    return _move(
        operation_id,
        from_statuses=[TaskStatus.ACTIVE],
        to=TaskStatus.PENDING,
        attempts=F("attempts") - 1,
        current_step=reason[:255],
        available_at=timezone.now() + timedelta(seconds=retry_in_seconds),
        lease_expires_at=None,
        worker_id="",
    )


def wake_parked(operation_id: str) -> None:
    """The lock a parked execution waits for was handed to it: make it claimable now, and wake
    idle workers (in the granting transaction, so both happen at its commit). A backend whose
    engine runs the attempts (Hatchet: `resume_parked`) is asked after the commit to start a new
    engine run for it."""
    if not operation_id:
        return
    woken = TaskExecution.objects.filter(
        pk=operation_id, status=TaskStatus.PENDING, available_at__gt=timezone.now()
    ).update(available_at=timezone.now())
    if not woken:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("NOTIFY sfp_tasks")
    transaction.on_commit(lambda: resume_on_engine(operation_id))


def resume_on_engine(operation_id: str) -> None:
    """Hand a woken parked execution to its backend's `resume_parked`, if it has one (the
    database backend has none: its workers claim the execution by its `available_at`)."""
    from django.utils.module_loading import import_string

    task_path = TaskExecution.objects.values_list("task_path", flat=True).get(pk=operation_id)
    declared = import_string(task_path)
    resume = getattr(declared.get_backend(), "resume_parked", None)
    if resume is not None:
        resume(declared, operation_id)


# --- the attempt ----------------------------------------------------------------------------


@dataclass
class AttemptOutcome:
    result: Any = None
    status: str = ""
    extra: dict = field(default_factory=dict)


def begin_engine_attempt(*, operation_id: str, worker_id: str) -> TaskExecution | None:
    """An engine (Hatchet) started the next attempt of an execution.

    The attempt's number is the execution's own count plus one, not the engine's retry count:
    a parked execution resumes in a new engine run, whose retry count starts at 0 again, and
    attempt numbers (`TaskAttempt` rows) must never repeat. Returns the execution, or None when
    it was cancelled or finished meanwhile (the caller then does nothing)."""
    now = timezone.now()
    moved = _move(
        operation_id,
        from_statuses=[TaskStatus.PENDING, TaskStatus.ACTIVE],
        to=TaskStatus.ACTIVE,
        attempts=F("attempts") + 1,
        worker_id=worker_id,
        error=None,
    )
    if not moved:
        return None
    TaskExecution.objects.filter(pk=operation_id, started_at__isnull=True).update(started_at=now)
    return TaskExecution.objects.get(pk=operation_id)


@contextmanager
def attempt(
    execution: TaskExecution, *, engine_schedules_retries: bool = False
) -> Iterator[AttemptOutcome]:
    """Run one attempt of an execution and record how it ended.

    With `engine_schedules_retries` (Hatchet), a failure that will be retried leaves the
    execution pending without a time: the engine decides when the next attempt starts."""
    outcome = AttemptOutcome()
    fence = attempt_fence(execution)
    attempt_opened(execution)
    try:
        yield outcome
    except TaskCancelled:
        moved = _end_attempt(execution, TaskStatus.CANCELLED, fence=fence)
        outcome.status = TaskStatus.CANCELLED if moved else ""
    except TaskFailed as failed:
        outcome.status = _fail_or_retry(
            execution,
            failed.message,
            failed.stack,
            failed.retryable,
            engine_schedules_retries=engine_schedules_retries,
            exit_code=failed.exit_code,
        )
        outcome.extra["error"] = failed
    except Exception as error:  # noqa: BLE001 - any crash of task code is a failed attempt
        outcome.status = _fail_or_retry(
            execution,
            f"{type(error).__name__}: {error}",
            traceback.format_exc(),
            retryable=True,
            engine_schedules_retries=engine_schedules_retries,
        )
        outcome.extra["error"] = error
    else:
        result = outcome.result
        exit_code = result.get("exitCode") if isinstance(result, dict) else None
        moved = _end_attempt(
            execution, TaskStatus.COMPLETED, fence=fence, exit_code=exit_code,
            result=result, progress=100,
        )  # fmt: skip
        outcome.status = TaskStatus.COMPLETED if moved else ""


def _end_attempt(
    execution: TaskExecution, to: str, *, fence: Q, exit_code: int | None = None, **fields
) -> bool:
    """Move an active execution to `to` (completed or cancelled) and close its attempt row."""
    with transaction.atomic(savepoint=False):
        moved = _move(
            execution.operation_id, from_statuses=[TaskStatus.ACTIVE], to=to, fence=fence, **fields
        )
        if moved:
            _attempt_closed(execution, to, exit_code=exit_code)
    return moved


# --- requests from the API ------------------------------------------------------------------


def cancel(operation_id: str) -> str:
    """Cancel a pending execution at once; ask the worker of an active one to stop. Children too.

    Returns the status the execution has (or is about to have)."""
    execution = TaskExecution.objects.get(pk=operation_id)
    for child in execution.children.exclude(status__in=FINISHED_STATUSES):
        cancel(child.operation_id)
    if _move(operation_id, from_statuses=[TaskStatus.PENDING], to=TaskStatus.CANCELLED):
        return TaskStatus.CANCELLED
    if execution.type.startswith("pipeline:"):  # no worker runs a pipeline itself: end it here
        _move(operation_id, from_statuses=[TaskStatus.ACTIVE], to=TaskStatus.CANCELLED)
        return TaskStatus.CANCELLED
    TaskExecution.objects.filter(operation_id=operation_id, status=TaskStatus.ACTIVE).update(
        cancel_requested=True
    )
    return TaskExecution.objects.values_list("status", flat=True).get(pk=operation_id)


# --- pipelines ------------------------------------------------------------------------------


def pipeline_started(operation_id: str) -> bool:
    return _move(
        operation_id,
        from_statuses=[TaskStatus.PENDING],
        to=TaskStatus.ACTIVE,
        started_at=timezone.now(),
    )


def pipeline_finished(
    operation_id: str, *, status: str, result: dict, error: dict | None = None
) -> bool:
    return _move(
        operation_id,
        from_statuses=[TaskStatus.ACTIVE],
        to=status,
        result=result,
        error=error,
        progress=100 if status == TaskStatus.COMPLETED else F("progress"),
        # The "Running: …" / "Waiting for approval: …" line ends with the pipeline.
        current_step="Completed" if status == TaskStatus.COMPLETED else "Stopped",
    )


def pipeline_reopened(operation_id: str) -> bool:
    """A failed pipeline runs again because one of its steps is being retried."""
    return _move(
        operation_id,
        from_statuses=[TaskStatus.FAILED, TaskStatus.ACTIVE],
        to=TaskStatus.ACTIVE,
        error=None,
        finished_at=None,
    )


def gate_decided(operation_id: str, *, approved: bool, by: str, comment: str = "") -> bool:
    decision = {
        "approved": approved,
        "by": by,
        "comment": comment,
        "at": timezone.now().isoformat(),
    }
    if approved:
        return _move(
            operation_id,
            from_statuses=[TaskStatus.PENDING],
            to=TaskStatus.COMPLETED,
            result=decision,
            progress=100,
        )
    return _move(
        operation_id,
        from_statuses=[TaskStatus.PENDING],
        to=TaskStatus.FAILED,
        result=decision,
        error={"message": f"Rejected by {by}" + (f": {comment}" if comment else ""), "stack": ""},
    )


def step_reset_for_retry(operation_id: str) -> bool:
    return _move(
        operation_id,
        from_statuses=[TaskStatus.FAILED, TaskStatus.CANCELLED],
        to=TaskStatus.PENDING,
        attempts=0,
        error=None,
        finished_at=None,
        cancel_requested=False,
        available_at=None,
        progress=0,
    )


def finish_recurring(operation_id: str, *, status: str) -> bool:
    """End a recurring definition (its runs are executions of their own)."""
    return _move(operation_id, from_statuses=[TaskStatus.PENDING], to=status, next_run_at=None)


def record_progress(
    operation_id: str, *, progress: int | None = None, step: str | None = None
) -> None:
    fields: dict[str, Any] = {}
    if progress is not None:
        fields["progress"] = max(0, min(99, progress))
    if step is not None:
        fields["current_step"] = step[:255]
    if not fields:
        return
    # Only a real change is written and announced (a pipeline's tick repeats its summary).
    unchanged = Q(**fields)
    with transaction.atomic(savepoint=False):
        changed = (
            TaskExecution.objects.filter(operation_id=operation_id, status=TaskStatus.ACTIVE)
            .exclude(unchanged)
            .update(**fields)
        )
        if changed:
            publish_task_event(
                operation_id,
                "task.progress",
                {"progress": fields.get("progress"), "currentStep": fields.get("current_step")},
            )
