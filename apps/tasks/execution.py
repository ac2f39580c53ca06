"""What running one operation means, whichever backend dispatched it.

`run_operation` reads the execution, redeems its credential grant, and runs through the runner,
in one workspace: the checkout of the project's repository (git, with the integration's header in
git's environment only), `sf org login sfdx-url` for each org alias (its auth URL in a 0600 file
that exists only while that command runs), then the `sfp` command from the catalogue inside the
checkout. It batches output lines into the task log, reads progress from the output, and maps
the exit to a result or a failure that says which step failed and whether retrying can help. The
worker that called it provides an `AttemptContext` (worker identity, a cancellation flag, and the
fence: the monotonic time by which its lease may lapse, after which the CLI is killed at once).
A database that is briefly unreachable costs log lines a delay, not the attempt.
"""

import contextvars
import re
import shlex
import threading
import time
from dataclasses import dataclass, field

import structlog
from django.conf import settings
from django.db import DatabaseError, close_old_connections, transaction
from django.utils import timezone

from apps.integrations import grants
from apps.tasks import lifecycle
from apps.tasks.catalogue import ORG_ALIAS_LOGIN_FLAGS, SOURCE_ALIAS, operation
from apps.tasks.models import TaskExecution, TaskLogLine
from apps.tasks.runner import Command, run_cli

_PROGRESS_PERCENT = re.compile(r"\bprogress[:=]?\s*(\d{1,3})\s*%", re.IGNORECASE)
_PROGRESS_RATIO = re.compile(r"\[(\d+)/(\d+)\]")
_STEP = re.compile(r"^(?:==>|Step:)\s*(.+)$")
CHECKOUT_DIR = "source"
_CHECKED_OUT = re.compile(r"^Checked out ([0-9a-f]{40}): ")


logger = structlog.get_logger("sfpserver.tasks")
MAX_PENDING_LOG_LINES = 20_000


@dataclass
class AttemptContext:
    worker_id: str
    cancel_event: threading.Event = field(default_factory=threading.Event)
    # Monotonic time after which this attempt's lease may have lapsed (the heartbeat moves it
    # on every renewal): past it, another worker may retry the execution, so the CLI must die.
    fence_at: float = float("inf")
    # The execution as the backend read it when the attempt began, handed down so the task
    # does not read it again.
    execution: TaskExecution | None = None

    def fenced(self) -> bool:
        return time.monotonic() >= self.fence_at


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
            try:
                lifecycle.append_log_lines(self.operation_id, self.pending)
            except DatabaseError:
                # The database is away: keep the lines (bounded) and try again at the next flush.
                logger.warning("task.log_flush_failed", operation_id=self.operation_id)
                self.pending = self.pending[-MAX_PENDING_LOG_LINES:]
                close_old_connections()
                self.last_flush = time.monotonic()
                return
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
            try:
                lifecycle.record_progress(
                    self.operation_id,
                    progress=progress if changed_progress else None,
                    step=step if changed_step else None,
                )
            except DatabaseError:
                logger.warning("task.progress_write_failed", operation_id=self.operation_id)
                close_old_connections()


@dataclass
class Credentials:
    """What the attempt's grant revealed: org auth URLs by alias, and the repository checkout
    (clone URL and its Authorization header), if any."""

    org_auth_urls: dict[str, str] = field(default_factory=dict, repr=False)
    org_usernames: dict[str, str] = field(default_factory=dict)
    checkout: dict | None = None


def _redeem_credentials(execution: TaskExecution, worker_id: str) -> Credentials:
    credentials = Credentials()
    live = grants.live_grant_for(operation_id=execution.operation_id)
    if live is None:
        return credentials
    for item in grants.grant_redeem_local(grant=live, worker_id=worker_id):
        alias = item.get("alias")
        if item["kind"] == "salesforce_org" and alias in ORG_ALIAS_LOGIN_FLAGS:
            credentials.org_auth_urls[alias] = item["credentials"]["sfdxAuthUrl"]
            credentials.org_usernames[alias] = item["ref"]["username"]
        elif item["kind"] == "repository" and alias == SOURCE_ALIAS:
            credentials.checkout = item["credentials"]
    return credentials


def _git_env(authorization: str | None) -> dict[str, str]:
    """git without prompts or system config; the Authorization header only in its environment
    (GIT_CONFIG_* never appears in argv, logs or the workspace's files)."""
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "GIT_ASKPASS": "/bin/false"}
    if authorization:
        env |= {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: {authorization}",
        }
    return env


# The sf CLI in a worker: no telemetry, no update checks, credentials in files under HOME.
SF_ENV = {
    "SF_DISABLE_TELEMETRY": "true",
    "SF_AUTOUPDATE_DISABLE": "true",
    "SF_SKIP_NEW_VERSION_CHECK": "true",
    "SF_USE_GENERIC_UNIX_KEYCHAIN": "true",
}


def _org_logins(credentials: Credentials) -> list[Command]:
    """`sf org login sfdx-url` per org alias: the auth URL in a 0600 file that exists only
    while that command runs (the sf CLI keeps what it needs under the workspace's HOME)."""
    sf = shlex.split(settings.SFP_SF_CLI_PATH)
    logins = []
    for alias, auth_url in credentials.org_auth_urls.items():
        url_file = f".sfp-auth/{alias}.url"
        arguments = ["org", "login", "sfdx-url", "--sfdx-url-file", url_file, "--alias", alias]
        arguments += ORG_ALIAS_LOGIN_FLAGS[alias]
        logins.append(
            Command(
                [*sf, *arguments],
                secrets_env=dict(SF_ENV),
                secret_files={url_file: auth_url},
                announce=f"$ sf {' '.join(arguments)}  ({credentials.org_usernames[alias]})",
                role=f"org-login:{alias}",
            )
        )
    return logins


def _commands(
    execution: TaskExecution, sfp: Command, credentials: Credentials, log: "TaskLog"
) -> list[Command]:
    """The checkout (when the repository is a registered project), the org logins, then sfp
    inside the checkout."""
    if credentials.checkout is None:
        if execution.data.get("repository"):
            log.append(
                "system",
                f"Project {execution.data['repository']} is not registered: "
                "sfp runs without a checkout",
            )
        return [*_org_logins(credentials), sfp]
    remote, branch = credentials.checkout["remoteUrl"], execution.data.get("branch") or "main"
    git = settings.SFP_GIT_PATH
    clone = ["clone", "--depth", "1", "--single-branch", "--branch", branch, remote, CHECKOUT_DIR]
    sfp.cwd = CHECKOUT_DIR
    return [
        Command(
            [git, *clone],
            secrets_env=_git_env(credentials.checkout.get("authorization")),
            announce="$ git " + " ".join(clone),
            role="checkout",
        ),
        Command([git, "log", "-1", "--format=Checked out %H: %s"], cwd=CHECKOUT_DIR),
        *_org_logins(credentials),
        sfp,
    ]


def _checkout_failure(tail: list[str], checkout: dict) -> tuple[str, bool]:
    """What went wrong with a clone, for the user, and whether another attempt could help (a
    refused credential or a missing branch will not change by retrying; a network error may)."""
    output = "\n".join(tail)
    if "could not read Username" in output or "Authentication failed" in output:
        if checkout.get("authorization"):
            return "the repository host refused the credentials of the project's integration", False
        return "the repository needs credentials: add an integration for the project", False
    last = next((line for line in reversed(tail) if line.strip()), "git failed without output")
    permanent = ("not found in upstream", "Repository not found", "does not appear to be a git")
    return last.removeprefix("fatal: "), not any(marker in output for marker in permanent)


def run_operation(operation_id: str) -> dict:
    context = _current_attempt.get() or AttemptContext(worker_id="inline")
    execution = context.execution
    if execution is None or execution.operation_id != operation_id:  # called outside an attempt
        execution = TaskExecution.objects.get(pk=operation_id)
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

    checked_out: dict[str, str] = {}

    def on_line(stream: str, text: str) -> None:
        log.append(stream, text)
        progress.read(text)
        if match := _CHECKED_OUT.match(text):
            checked_out["commit"] = match.group(1)

    with transaction.atomic():
        credentials = _redeem_credentials(execution, context.worker_id)
    command = op.command(execution.data)
    sfp = Command(
        [*shlex.split(settings.SFP_CLI_PATH), *command],
        secrets_env=dict(SF_ENV),
        announce="$ sfp " + " ".join(command),
    )
    commands = _commands(execution, sfp, credentials, log)
    outcome = run_cli(
        commands,
        timeout_seconds=execution.timeout_seconds,
        on_line=on_line,
        cancel_requested=context.cancel_event.is_set,
        on_tick=log.flush_if_due,
        must_stop_now=context.fenced,
        term_grace_seconds=settings.SFP_CLI_TERM_GRACE_SECONDS,
    )
    if outcome.lease_lost:
        log.append("system", "Stopped: this worker lost its lease (the process tree was killed)")
        log.flush()
        raise lifecycle.TaskFailed("The worker lost its lease on this attempt", retryable=True)
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
    if outcome.exit_code != 0 and commands[outcome.last_command].role == "checkout":
        reason, retryable = _checkout_failure(outcome.tail, credentials.checkout)
        raise lifecycle.TaskFailed(
            f"Could not check out {execution.data['repository']} at "
            f"{execution.data.get('branch') or 'main'}: {reason}",
            stack="\n".join(outcome.tail),
            retryable=retryable,
            exit_code=outcome.exit_code,
        )
    failed_role = commands[outcome.last_command].role
    if outcome.exit_code != 0 and failed_role.startswith("org-login:"):
        alias = failed_role.removeprefix("org-login:")
        output = "\n".join(outcome.tail)
        reason = next((line for line in reversed(outcome.tail) if line.strip()), "no output")
        raise lifecycle.TaskFailed(
            f"Could not authorise org {credentials.org_usernames[alias]} ({alias}) in the sf "
            f"CLI: {reason.removeprefix('Error (1): ')}",
            stack=output,
            retryable="invalid_grant" not in output and "Invalid SFDX" not in output,
            exit_code=outcome.exit_code,
        )
    if outcome.exit_code != 0:
        raise lifecycle.TaskFailed(
            f"sfp exited with code {outcome.exit_code}",
            stack="\n".join(outcome.tail),
            exit_code=outcome.exit_code,
        )
    return {"exitCode": 0, "durationSeconds": round(outcome.duration_seconds, 2)} | checked_out
