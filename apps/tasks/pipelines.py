"""Pipelines: a parent execution whose steps are child executions, run in order or fanned out,
with approval gates that wait for an owner.

A pipeline's steps are derived from its data by its definition, deterministically, so the
orchestrator (`advance`) can be run again at any time — after a step finishes, after a gate is
decided, by every worker's periodic tick, after a restart — and always does the same thing: start
the steps whose dependencies are met, and finish the pipeline when nothing more can run. All
state is in the database; nothing is remembered in a process.

Each task step is an ordinary execution of a catalogue operation, with that operation's own
retries and timeout; a step's `on_failure` is `stop` (the pipeline fails) or `continue`. A failed
step can be retried alone (`retry_step`); completed steps are never redone.
"""

from dataclasses import dataclass, field

from django.db import transaction

from apps.accounts.roles import PRIVILEGED
from apps.core.exceptions import Conflict, InvalidRequest, NotFound
from apps.tasks import lifecycle
from apps.tasks.catalogue import operation
from apps.tasks.models import (
    FINISHED_STATUSES,
    TaskExecution,
    TaskStatus,
    TriggerKind,
)

PIPELINE_PREFIX = "pipeline:"
GATE_TYPE = "gate"
# Live group of every gate event (owners decide gates; their per-user feed includes it).
GATES_FEED = "gates"


@dataclass(frozen=True)
class Step:
    name: str
    kind: str  # "task" or "gate"
    after: tuple[str, ...] = ()
    task_type: str = ""
    data: dict = field(default_factory=dict)
    on_failure: str = "stop"
    title: str = ""


def _release_steps(data: dict) -> list[Step]:
    """Release: dry run on every target (fanned out) → per target: approval → deploy."""
    base = {"repository": data["repository"], "branch": data.get("branch", "main")}
    definition = data["releaseDefinition"]
    steps = []
    environments = data.get("environments") or {}
    for target in data["targets"]:
        release = base | {"targetOrg": target, "releaseDefinition": definition}
        # The deploy step holds the target environment's lock, when the target is one.
        deploy = release | ({"environment": environments[target]} if target in environments else {})
        steps += [
            Step(f"dry-run:{target}", "task", (), "release", release | {"dryRun": True}),
            Step(
                f"approve:{target}",
                "gate",
                (f"dry-run:{target}",),
                title=f"Approve the release of {definition} to {target}",
            ),
            Step(f"deploy:{target}", "task", (f"approve:{target}",), "release", deploy),
        ]
    return steps


def _validate_release(data) -> dict:
    if not isinstance(data, dict):
        raise InvalidRequest("data must be an object", details={"data": ["Object."]})
    environments = {}
    if data.get("environments") is not None:  # environments of the repository, instead of orgs
        names = data["environments"]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise InvalidRequest(
                "data.environments must list environment names",
                details={"data.environments": ["A non-empty list of names."]},
            )
        from apps.tasks.services import resolve_environment

        targets = []
        for name in names:
            resolved = resolve_environment(
                None, {"repository": data.get("repository", ""), "environment": name}
            )
            targets.append(resolved["targetOrg"])
            environments[resolved["targetOrg"]] = name
        data = {k: v for k, v in data.items() if k != "environments"} | {"targets": targets}
    targets = data.get("targets")
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        raise InvalidRequest(
            "data.targets must list the target orgs (usernames)",
            details={"data.targets": ["A non-empty list of org usernames."]},
        )
    if len(set(targets)) != len(targets):
        raise InvalidRequest(
            "data.targets lists an org twice", details={"data.targets": ["Unique."]}
        )
    release = operation("release")
    for target in targets:  # each step's input must be valid before anything starts
        release.validate({k: v for k, v in data.items() if k != "targets"} | {"targetOrg": target})
    return {
        "repository": data["repository"],
        "branch": data.get("branch", "main"),
        "releaseDefinition": data["releaseDefinition"],
        "targets": targets,
        "environments": environments,
    }


@dataclass(frozen=True)
class PipelineDefinition:
    name: str
    description: str
    validate: object
    steps: object
    allowed_roles: tuple[str, ...] = PRIVILEGED


PIPELINES = {
    "release": PipelineDefinition(
        "release",
        "Dry run on every target, then per target an approval gate and the deployment",
        _validate_release,
        _release_steps,
    ),
}


def definition(name: str) -> PipelineDefinition:
    found = PIPELINES.get(name)
    if found is None:
        raise InvalidRequest(
            f"Unknown pipeline {name!r}; valid pipelines: {', '.join(sorted(PIPELINES))}",
            details={"type": [f"One of: {', '.join(sorted(PIPELINES))}."]},
        )
    return found


def steps_of(parent: TaskExecution) -> list[Step]:
    return definition(parent.type.removeprefix(PIPELINE_PREFIX)).steps(parent.data)


def _children(parent: TaskExecution) -> dict[str, TaskExecution]:
    return {child.step: child for child in parent.children.all()}


def _start_step(parent: TaskExecution, step: Step) -> None:
    common = {
        "parent": parent,
        "step": step.name,
        "priority": parent.priority,
        "triggered_by_kind": TriggerKind.SCHEDULE,
        "triggered_by_id": parent.operation_id,
        "triggered_by_label": parent.triggered_by_label,
    }
    if step.kind == "gate":
        gate = TaskExecution.objects.create(
            type=GATE_TYPE, data={"title": step.title}, task_path="", current_step=step.title,
            **common,
        )  # fmt: skip
        lifecycle.publish_task_event(
            parent.operation_id,
            "pipeline.gate",
            {
                "step": step.name,
                "title": step.title,
                "gateId": gate.operation_id,
                "state": "waiting",
            },
            extra_groups=(GATES_FEED,),
        )
        return
    declared = operation(step.task_type).task
    child = TaskExecution.objects.create(
        type=step.task_type,
        data=operation(step.task_type).validate(step.data),
        pool=declared.pool,
        max_attempts=declared.retries + 1,
        backoff_seconds=declared.backoff_seconds,
        backoff_max_seconds=declared.backoff_max_seconds,
        timeout_seconds=declared.timeout_seconds,
        task_path=declared.module_path,
        **common,
    )
    prepared = declared.using(priority=parent.priority)
    transaction.on_commit(lambda: prepared.enqueue(child.operation_id))


def advance(operation_id: str) -> str:
    """Start what can start, finish the pipeline when nothing more can. Safe to call anytime."""
    with transaction.atomic():
        parent = TaskExecution.objects.select_for_update().get(pk=operation_id)
        if parent.status in FINISHED_STATUSES:
            return parent.status
        lifecycle.pipeline_started(parent.operation_id)
        steps = steps_of(parent)
        children = _children(parent)
        blocked_by_failure = None
        for step in steps:
            child = children.get(step.name)
            if child is None:
                deps = [children.get(name) for name in step.after]
                if all(d is not None and d.status == TaskStatus.COMPLETED for d in deps):
                    _start_step(parent, step)
                continue
            if (
                child.status in (TaskStatus.FAILED, TaskStatus.CANCELLED)
                and step.on_failure == "stop"
            ):
                blocked_by_failure = blocked_by_failure or (step, child)
        children = _children(parent)
        finished = [c for c in children.values() if c.status in FINISHED_STATUSES]
        running = [c for c in children.values() if c.status not in FINISHED_STATUSES]
        waiting = [c for c in running if c.type == GATE_TYPE]
        summary = {c.step: c.status for c in children.values()}
        if blocked_by_failure and not [c for c in running if c.type != GATE_TYPE]:
            step, child = blocked_by_failure
            for gate in waiting:  # nothing will ever approve them now
                lifecycle.gate_decided(gate.operation_id, approved=False, by="pipeline stopped")
            error = {
                "message": f"Step {step.name} {child.status}: "
                + ((child.error or {}).get("message") or "no detail"),
                "stack": "",
            }
            lifecycle.pipeline_finished(
                parent.operation_id,
                status=TaskStatus.FAILED,
                error=error,
                result={"steps": summary},
            )
            return TaskStatus.FAILED
        if len(finished) == len(steps) and all(c.status == TaskStatus.COMPLETED for c in finished):
            lifecycle.pipeline_finished(
                parent.operation_id, status=TaskStatus.COMPLETED, result={"steps": summary}
            )
            return TaskStatus.COMPLETED
        done = sum(1 for c in finished if c.status == TaskStatus.COMPLETED)
        step_text = (
            "Waiting for approval: " + ", ".join(g.current_step for g in waiting)
            if waiting and len(waiting) == len(running)
            else "Running: " + ", ".join(c.step for c in running)
        )
        lifecycle.record_progress(
            parent.operation_id, progress=int(100 * done / len(steps)), step=step_text
        )
        return TaskStatus.ACTIVE


def advance_all() -> int:
    """The periodic tick: advance every pipeline still running (workers call it)."""
    live = TaskExecution.objects.filter(
        type__startswith=PIPELINE_PREFIX, status__in=[TaskStatus.PENDING, TaskStatus.ACTIVE]
    ).values_list("pk", flat=True)
    for operation_id in live:
        advance(operation_id)
    return len(live)


def waiting_gate(parent: TaskExecution, step_name: str | None) -> TaskExecution:
    gates = parent.children.filter(type=GATE_TYPE, status=TaskStatus.PENDING)
    if step_name:
        gates = gates.filter(step=step_name)
    found = list(gates)
    if not found:
        raise NotFound(
            f"Pipeline {parent.operation_id} has no gate waiting"
            + (f" at {step_name}" if step_name else "")
        )
    if len(found) > 1:
        names = ", ".join(g.step for g in found)
        raise InvalidRequest(
            f"Several gates are waiting ({names}): name the step", details={"step": [names]}
        )
    return found[0]


def decide_gate(
    *, parent: TaskExecution, step_name: str | None, approved: bool, by: str, comment: str = ""
) -> TaskExecution:
    gate = waiting_gate(parent, step_name)
    if not lifecycle.gate_decided(gate.operation_id, approved=approved, by=by, comment=comment):
        raise Conflict(f"Gate {gate.step} was decided meanwhile")
    lifecycle.publish_task_event(
        parent.operation_id,
        "pipeline.gate",
        {"step": gate.step, "gateId": gate.operation_id,
         "state": "approved" if approved else "rejected", "by": by},
        extra_groups=(GATES_FEED,),
    )  # fmt: skip
    advance(parent.operation_id)
    return TaskExecution.objects.get(pk=gate.pk)


def retry_step(*, parent: TaskExecution, step_name: str) -> TaskExecution:
    """Run a failed step again (from its first attempt); completed steps stay done."""
    child = parent.children.filter(step=step_name).first()
    if child is None:
        raise NotFound(f"Pipeline {parent.operation_id} has no step {step_name}")
    if child.status not in (TaskStatus.FAILED, TaskStatus.CANCELLED) or child.type == GATE_TYPE:
        raise Conflict(
            f"Step {step_name} is {child.status}: "
            "only a failed or cancelled task step can be retried"
        )
    with transaction.atomic():
        lifecycle.step_reset_for_retry(child.operation_id)
        lifecycle.pipeline_reopened(parent.operation_id)
        prepared = operation(child.type).task.using(priority=parent.priority)
        transaction.on_commit(lambda: prepared.enqueue(child.operation_id))
    return TaskExecution.objects.get(pk=child.pk)


def steps_dto(parent: TaskExecution) -> list[dict]:
    children = _children(parent)
    rows = []
    for step in steps_of(parent):
        child = children.get(step.name)
        rows.append(
            {
                "name": step.name,
                "kind": step.kind,
                "after": list(step.after),
                "title": step.title or None,
                "operationId": child.operation_id if child else None,
                "status": child.status if child else "waiting",
                "attempts": child.attempts if child else 0,
                "error": child.error if child else None,
                "decision": (child.result or {}) if child and child.type == GATE_TYPE else None,
                "finishedAt": child.finished_at.isoformat()
                if child and child.finished_at
                else None,
            }
        )
    return rows
