"""One attempt of an execution, whichever backend dispatched it.

`run_attempt` issues the credential grant the operation needs, watches for cancellation in a
thread (the database worker's lease heartbeat, or Hatchet's cancel signal), runs the declared task
inside `lifecycle.attempt`, and ends the grant with the attempt's status. The environment lock a
task needs is claimed and released here too (`claim_environment_lock`).
"""

import threading
from collections.abc import Callable

import structlog
from django.utils.module_loading import import_string

from apps.environments.selectors import locks as lock_reads
from apps.environments.services import locks
from apps.integrations import grants
from apps.tasks import lifecycle
from apps.tasks.catalogue import credential_items, environment_lock_of, operation
from apps.tasks.execution import AttemptContext, attempt_context
from apps.tasks.models import TaskExecution

logger = structlog.get_logger("sfpserver.tasks")


def run_attempt(
    execution: TaskExecution,
    *,
    worker_id: str,
    watch: Callable[[AttemptContext, threading.Event], None],
    engine_schedules_retries: bool = False,
) -> lifecycle.AttemptOutcome:
    """Run one attempt of an execution the caller already moved to active.

    Issues the credential grant the operation needs (granted to `local:<worker_id>`), runs `watch`
    in a thread for the attempt's duration (it sets `context.cancel_event` when the attempt must
    stop; it is told to end through the event it is given), runs the declared task inside
    `lifecycle.attempt`, and ends the grant with the attempt's status. Backend-neutral: the
    database worker's `_run` is this with its lease heartbeat as `watch`."""
    context = AttemptContext(worker_id=worker_id, execution=execution)
    token = attempt_context(context)
    stop = threading.Event()
    watcher = threading.Thread(
        target=watch, args=(context, stop), name="sfp-attempt-watch", daemon=True
    )
    items = credential_items(operation(execution.type), execution.data)
    status = "failed"
    outcome = lifecycle.AttemptOutcome()
    try:
        if items:
            grants.grant_issue(
                operation_id=execution.operation_id,
                grantee_token_id=f"local:{worker_id}",
                items=items,
                ttl_seconds=execution.timeout_seconds + 600,
            )
        watcher.start()
        with lifecycle.attempt(
            execution, engine_schedules_retries=engine_schedules_retries
        ) as outcome:
            outcome.result = import_string(execution.task_path).call(execution.operation_id)
        status = outcome.status
    finally:
        stop.set()
        if watcher.is_alive():
            watcher.join()
        if items:
            grants.grant_end(operation_id=execution.operation_id, reason=str(status))
        token.var.reset(token)
    logger.info(
        "task.attempt_finished",
        operation_id=execution.operation_id,
        type=execution.type,
        status=status,
    )
    return outcome


def claim_environment_lock(execution: TaskExecution):
    """Take the lock of the environment the execution targets, keeping its place in the queue.

    Returns (repository, resource, ticket id) when held, None when the task needs no lock, or —
    when another holder has it — the reason to show as the execution's current step."""
    target = environment_lock_of(operation(execution.type), execution.data)
    if target is None:
        return None
    repository, resource = target
    ticket = locks.lock_request(
        holder=locks.Holder.task(execution.operation_id),
        repository=repository,
        resource=resource,
        lease_seconds=min(locks.MAX_LEASE_SECONDS, execution.timeout_seconds + 300),
        reason=f"{execution.type} {execution.operation_id}",
    )
    if ticket.status == "acquired":
        return repository, resource, ticket.ticket_id
    state = lock_reads.lock_state(repository, resource)
    current = state["currentLock"] or {}
    return (
        f"Waiting for lock {resource} of {repository}: "
        f"held by {current.get('lockedBy') or 'nobody'}, "
        f"position {lock_reads.queue_position(ticket)}, "
        f"expected wait ~{current.get('expiresInSeconds') or 0} s"
    )


def release_environment_lock(execution: TaskExecution, held, status: str) -> None:
    if held:
        repository, resource, ticket_id = held
        locks.lock_release(
            repository=repository, resource=resource, ticket_id=ticket_id,
            holder=locks.Holder.task(execution.operation_id), released_by=f"task {status}",
        )  # fmt: skip
