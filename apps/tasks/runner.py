"""Runs a task's commands: one fresh workspace for all of them (the repository checkout, then the
`sfp` CLI), credentials only in the environment of the command that needs them, output streamed
line by line, one timeout and cancellation enforced on each command's whole process group, and
the workspace wiped whatever happens.

The caller supplies `on_line(stream, text)` and `on_tick()` (called about ten times a second);
nothing here touches the database.
"""

import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# Variables of the worker's own environment a CLI may see; everything else (database URLs,
# keys, tokens of the server) stays out of the child.
_PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "NODE_OPTIONS", "SSL_CERT_FILE")


@dataclass
class Command:
    """One process to run in the workspace; `cwd` is relative to it. `announce` is logged (as a
    `system` line) when it starts; `role` names it for the caller's error messages. Secrets reach
    it only through `secrets_env` or `secret_files`, never its argv."""

    argv: list[str]
    secrets_env: dict[str, str] = field(default_factory=dict, repr=False)
    cwd: str = "."
    announce: str = ""
    role: str = ""
    # Files (path relative to the workspace → content) that exist only while it runs, 0600.
    secret_files: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass
class RunOutcome:
    exit_code: int | None
    timed_out: bool = False
    cancelled: bool = False
    duration_seconds: float = 0.0
    tail: list[str] = field(default_factory=list)
    # Index of the command that ended the run (the first to fail, or the last one).
    last_command: int = 0


def _terminate_group(process: subprocess.Popen, grace_seconds: float) -> None:
    """SIGTERM the process group; SIGKILL it if it has not exited after the grace period."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        process.wait()


def _pump(stream, name: str, lines: queue.Queue) -> None:
    for raw in iter(stream.readline, ""):
        lines.put((name, raw.rstrip("\n")))
    stream.close()
    lines.put((name, None))


def run_cli(
    commands: list[Command],
    *,
    timeout_seconds: float,
    on_line: Callable[[str, str], None],
    cancel_requested: Callable[[], bool],
    on_tick: Callable[[], None] = lambda: None,
    term_grace_seconds: float = 5.0,
    tail_size: int = 20,
) -> RunOutcome:
    """Run `commands` in order in one fresh workspace, stopping at the first that fails."""
    workspace = tempfile.mkdtemp(prefix="sfp-task-")
    base_env = {key: os.environ[key] for key in _PASSED_THROUGH if key in os.environ}
    base_env |= {"HOME": workspace, "TMPDIR": workspace, "SFP_WORKSPACE": workspace, "CI": "true"}
    started = time.monotonic()
    outcome = RunOutcome(exit_code=None)
    try:
        for index, command in enumerate(commands):
            outcome.last_command = index
            if command.announce:
                on_line("system", command.announce)
            env = base_env | command.secrets_env
            written = _write_secret_files(workspace, command.secret_files)
            try:
                _run_one(
                    command,
                    os.path.join(workspace, command.cwd),
                    env,
                    outcome,
                    deadline=started + timeout_seconds,
                    on_line=on_line,
                    cancel_requested=cancel_requested,
                    on_tick=on_tick,
                    term_grace_seconds=term_grace_seconds,
                    tail_size=tail_size,
                )
            finally:
                env.clear()
                for path in written:
                    os.remove(path)
            if outcome.exit_code != 0 or outcome.cancelled or outcome.timed_out:
                break
    finally:
        for command in commands:
            command.secrets_env.clear()
            command.secret_files.clear()
        shutil.rmtree(workspace, ignore_errors=True)
        outcome.duration_seconds = time.monotonic() - started
    return outcome


def _write_secret_files(workspace: str, files: dict[str, str]) -> list[str]:
    written = []
    for relative, content in files.items():
        path = os.path.join(workspace, relative)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(content)
        written.append(path)
    return written


def _run_one(
    command: Command,
    cwd: str,
    env: dict[str, str],
    outcome: RunOutcome,
    *,
    deadline: float,
    on_line: Callable[[str, str], None],
    cancel_requested: Callable[[], bool],
    on_tick: Callable[[], None],
    term_grace_seconds: float,
    tail_size: int,
) -> None:
    process = subprocess.Popen(  # noqa: S603 - argv built from the catalogue, never a shell
        command.argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
        start_new_session=True,  # its own process group, so cancel reaches grandchildren
    )
    lines: queue.Queue = queue.Queue()
    pumps = [
        threading.Thread(target=_pump, args=(process.stdout, "stdout", lines), daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, "stderr", lines), daemon=True),
    ]
    for pump in pumps:
        pump.start()
    open_streams = 2
    while open_streams or process.poll() is None:
        try:
            name, text = lines.get(timeout=0.1)
        except queue.Empty:
            name, text = None, None
        if name is not None:
            if text is None:
                open_streams -= 1
            else:
                outcome.tail = [*outcome.tail, text][-tail_size:]
                on_line(name, text)
        on_tick()  # e.g. flush buffered log lines while the process is quiet
        if process.poll() is None and not (outcome.cancelled or outcome.timed_out):
            if cancel_requested():
                outcome.cancelled = True
                _terminate_group(process, term_grace_seconds)
            elif time.monotonic() > deadline:
                outcome.timed_out = True
                _terminate_group(process, term_grace_seconds)
    outcome.exit_code = process.wait()
