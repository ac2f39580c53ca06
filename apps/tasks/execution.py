"""What running one operation means, whichever backend dispatched it.

`run_operation` reads the execution, redeems its credential grant, builds the command line from
the catalogue, runs the `sfp` CLI through the runner, batches output lines into the task log,
reads progress from the output, and maps the exit to a result or a failure. The worker that
called it provides an `AttemptContext` (worker identity and a cancellation flag).
"""

import contextvars
import re
import shlex
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.integrations import grants
from apps.tasks import lifecycle
from apps.tasks.catalogue import ORG_ALIAS_ENV, operation
from apps.tasks.models import TaskExecution, TaskLogLine
from apps.tasks.runner import run_cli

_PROGRESS_PERCENT = re.compile(r"\bprogress[:=]?\s*(\d{1,3})\s*%", re.IGNORECASE)
_PROGRESS_RATIO = re.compile(r"\[(\d+)/(\d+)\]")
_STEP = re.compile(r"^(?:==>|Step:)\s*(.+)$")


@dataclass
class AttemptContext:
    worker_id: str
    cancel_event: threading.Event = field(default_factory=threading.Event)


_current_attempt: contextvars.ContextVar[AttemptContext | None] = contextvars.ContextVar(
    "sfp_attempt", default=None
)


def attempt_context(context: AttemptContext):
    return _current_attempt.set(context)


class TaskLog:
    """Appends output lines to the task log in batches (at most every `interval` seconds or
    `batch_size` lines), never one write per line. Lines are numbered when they are stored."""

    def __init__(self, operation_id: str, *, interval: float = 0.5, batch_size: int = 200):
        self.operation_id = operation_id
        self.interval = interval
        self.batch_size = batch_size
        self.pending: list[TaskLogLine] = []
        self.last_flush = time.monotonic()

    def append(self, stream: str, message: str) -> None:
        self.pending.append(
            TaskLogLine(
                execution_id=self.operation_id,
                logged_at=timezone.now(),
                stream=stream,
                message=message[:10_000],
            )
        )
        if len(self.pending) >= self.batch_size:
            self.flush()
        else:
            self.flush_if_due()

    def flush_if_due(self) -> None:
        if self.pending and time.monotonic() - self.last_flush >= self.interval:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            lifecycle.append_log_lines(self.operation_id, self.pending)
            self.pending = []
        self.last_flush = time.monotonic()


class ProgressReader:
    """Reads progress and the current step from CLI output, writing only on change."""

    def __init__(self, operation_id: str):
        self.operation_id = operation_id
        self.progress: int | None = None
        self.step: str | None = None

    def read(self, line: str) -> None:
        progress, step = None, None
        if match := _PROGRESS_PERCENT.search(line):
            progress = int(match.group(1))
        elif match := _PROGRESS_RATIO.search(line):
            done, total = int(match.group(1)), int(match.group(2))
            if total:
                progress = int(100 * done / total)
        if match := _STEP.match(line.strip()):
            step = match.group(1).strip()
        changed_progress = progress is not None and progress != self.progress
        changed_step = step is not None and step != self.step
        if changed_progress or changed_step:
            self.progress = progress if progress is not None else self.progress
            self.step = step if step is not None else self.step
            lifecycle.record_progress(
                self.operation_id,
                progress=progress if changed_progress else None,
                step=step if changed_step else None,
            )


def _credentials_env(execution: TaskExecution, worker_id: str) -> dict[str, str]:
    live = grants.live_grant_for(operation_id=execution.operation_id)
    if live is None:
        return {}
    env = {}
    for item in grants.grant_redeem_local(grant=live, worker_id=worker_id):
        alias = item.get("alias")
        if item["kind"] == "salesforce_org" and alias in ORG_ALIAS_ENV:
            env[ORG_ALIAS_ENV[alias]] = item["credentials"]["sfdxAuthUrl"]
    return env


def run_operation(operation_id: str) -> dict:
    execution = TaskExecution.objects.get(pk=operation_id)
    context = _current_attempt.get() or AttemptContext(worker_id="inline")
    op = operation(execution.type)
    if op.command is None:  # noop: the smallest real task, for smoke tests and benchmarks
        if execution.data.get("sleepSeconds"):
            deadline = time.monotonic() + float(execution.data["sleepSeconds"])
            while time.monotonic() < deadline:
                if context.cancel_event.wait(0.05):
                    raise lifecycle.TaskCancelled()
        if execution.data.get("fail"):
            raise lifecycle.TaskFailed("noop asked to fail")
        return {"ok": True, "attempt": execution.attempts}

    log = TaskLog(operation_id)
    progress = ProgressReader(operation_id)

    def on_line(stream: str, text: str) -> None:
        log.append(stream, text)
        progress.read(text)

    with transaction.atomic():
        secrets_env = _credentials_env(execution, context.worker_id)
    command = op.command(execution.data)
    argv = [*shlex.split(settings.SFP_CLI_PATH), *command]
    log.append("system", "$ sfp " + " ".join(command))
    outcome = run_cli(
        argv,
        secrets_env=secrets_env,
        timeout_seconds=execution.timeout_seconds,
        on_line=on_line,
        cancel_requested=context.cancel_event.is_set,
        on_tick=log.flush_if_due,
        term_grace_seconds=settings.SFP_CLI_TERM_GRACE_SECONDS,
    )
    if outcome.cancelled:
        log.append("system", "Cancelled: the process group was terminated")
        log.flush()
        raise lifecycle.TaskCancelled()
    if outcome.timed_out:
        log.append("system", f"Timed out after {execution.timeout_seconds} s")
        log.flush()
        raise lifecycle.TaskFailed(
            f"Timed out after {execution.timeout_seconds} s", stack="\n".join(outcome.tail)
        )
    log.append(
        "system", f"Exited with code {outcome.exit_code} in {outcome.duration_seconds:.1f} s"
    )
    log.flush()
    if outcome.exit_code != 0:
        raise lifecycle.TaskFailed(
            f"sfp exited with code {outcome.exit_code}", stack="\n".join(outcome.tail)
        )
    return {"exitCode": 0, "durationSeconds": round(outcome.duration_seconds, 2)}
