"""Runs a task's commands: one fresh workspace for all of them (the repository checkout, then the
`sfp` CLI), credentials only in the environment of the command that needs them, output streamed
line by line, one timeout and cancellation enforced on each command's whole process group, and
the workspace wiped whatever happens.

No command outlives its worker, and none outlives its run: each runs under `cli_guard.py` (its
parent-death signal and subreaper kill the tree when the worker dies, kill -9 included), and
before `run_cli` returns, it SIGKILLs what is left of the command's group and of every process
carrying the workspace in its environment, and confirms none is left. The worker process itself
should be a child subreaper (`become_subreaper()`), so descendants of a guard that was killed
re-parent to it and are found and reaped here. Each workspace names its owner process
(`.sfp-owner`); `sweep_dead_workspaces()` wipes the workspaces of owners that are gone (a worker
runs it at start). Wiping overwrites credential files before unlinking them.

The caller supplies `on_line(stream, text)`, `on_tick()` (called about ten times a second),
`cancel_requested()` (stop politely: SIGTERM, then SIGKILL after the grace period) and
`must_stop_now()` (the attempt lost its lease: SIGKILL now); nothing here touches the database.
"""

import ctypes
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from apps.tasks import cli_guard

logger = structlog.get_logger("sfpserver.runner")

GUARD = str(Path(cli_guard.__file__).resolve())
WORKSPACE_PREFIX = "sfp-task-"
OWNER_FILE = ".sfp-owner"
CONFIRM_DEAD_SECONDS = 10.0
# Pids of the guards this process started and has not waited for yet: orphans re-parented to
# this process (a subreaper) are reaped, these never (their Popen waits for them).
_spawned: set[int] = set()
_spawned_lock = threading.Lock()

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
    lease_lost: bool = False
    duration_seconds: float = 0.0
    tail: list[str] = field(default_factory=list)
    # Index of the command that ended the run (the first to fail, or the last one).
    last_command: int = 0


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); False elsewhere."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(cli_guard.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def workspace_root() -> str:
    from django.conf import settings

    return getattr(settings, "SFP_WORKSPACE_ROOT", "") or tempfile.gettempdir()


def _process_start_time(pid: int) -> str | None:
    """The kernel's start time of a process (field 22 of /proc/<pid>/stat), None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def _claim_workspace(workspace: str) -> None:
    owner = {"pid": os.getpid(), "start": _process_start_time(os.getpid()), "boot": _boot_id()}
    descriptor = os.open(os.path.join(workspace, OWNER_FILE), os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(owner, handle)


def _owner_alive(workspace: str) -> bool:
    try:
        with open(os.path.join(workspace, OWNER_FILE)) as handle:
            owner = json.load(handle)
    except (OSError, ValueError):
        # No owner yet: a workspace being created right now, or one of a crash long ago.
        try:
            return time.time() - os.stat(workspace).st_mtime < 60
        except OSError:
            return False
    if owner.get("boot") != _boot_id():
        return False
    return _process_start_time(int(owner.get("pid", 0))) == owner.get("start")


def sweep_dead_workspaces(root: str | None = None) -> int:
    """Wipe the workspaces in `root` whose owner process is gone; returns how many."""
    root = root or workspace_root()
    swept = 0
    try:
        entries = list(os.scandir(root))
    except OSError:
        return 0
    for entry in entries:
        if not entry.name.startswith(WORKSPACE_PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
        except OSError:
            continue
        if _owner_alive(entry.path):
            continue
        _kill_marked(entry.path)  # a straggler of the dead attempt, if any survived
        cli_guard.wipe_workspace(entry.path)
        swept += 1
    if swept:
        logger.warning("worker.workspaces_swept", count=swept, root=root)
    return swept


def _marked_processes(workspace: str) -> list[int]:
    """Live processes whose environment carries this workspace (every command of it does)."""
    marker = f"SFP_WORKSPACE={workspace}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as handle:
                if marker in handle.read().split(b"\0"):
                    found.append(int(name))
        except OSError:
            continue
    return found


def _reap_orphans() -> None:
    """Reap zombie children that are not our own guards (orphans re-parented to us)."""
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return
    children: set[int] = set()
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/children") as handle:
                children.update(int(pid) for pid in handle.read().split())
        except OSError:
            continue
    with _spawned_lock:
        orphans = children - _spawned
    for pid in orphans:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def _kill_marked(workspace: str, group: int | None = None) -> None:
    """SIGKILL the command's group and every process carrying the workspace, until none is left
    (confirmed dead), or raise after CONFIRM_DEAD_SECONDS."""
    deadline = time.monotonic() + CONFIRM_DEAD_SECONDS
    while True:
        if group is not None:
            try:
                os.killpg(group, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        survivors = _marked_processes(workspace)
        for pid in survivors:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _reap_orphans()
        if not survivors:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {survivors} of a task would not die")
        time.sleep(0.02)


def _terminate_group(process: subprocess.Popen, grace_seconds: float) -> None:
    """SIGTERM the process group; SIGKILL it if it has not exited after the grace period."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        _kill_group(process)


def _kill_group(process: subprocess.Popen) -> None:
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
    must_stop_now: Callable[[], bool] = lambda: False,
    term_grace_seconds: float = 5.0,
    tail_size: int = 20,
) -> RunOutcome:
    """Run `commands` in order in one fresh workspace, stopping at the first that fails."""
    workspace = tempfile.mkdtemp(prefix=WORKSPACE_PREFIX, dir=workspace_root())
    _claim_workspace(workspace)
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
                    must_stop_now=must_stop_now,
                    term_grace_seconds=term_grace_seconds,
                    tail_size=tail_size,
                )
            finally:
                env.clear()
                for path in written:
                    cli_guard._overwrite(path)
            if outcome.exit_code != 0 or outcome.cancelled or outcome.timed_out:
                break
            if outcome.lease_lost or must_stop_now():
                outcome.lease_lost = True
                break
    finally:
        for command in commands:
            command.secrets_env.clear()
            command.secret_files.clear()
        _kill_marked(workspace)
        cli_guard.wipe_workspace(workspace)
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
    must_stop_now: Callable[[], bool],
    term_grace_seconds: float,
    tail_size: int,
) -> None:
    with _spawned_lock:  # held across the fork, so the orphan reaper never takes our guard
        process = subprocess.Popen(  # noqa: S603 - argv built from the catalogue, never a shell
            [sys.executable, "-I", "-S", GUARD, *command.argv],
            cwd=cwd,
            env=env | {"SFP_GUARD_PARENT_PID": str(os.getpid())},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            start_new_session=True,  # its own process group, so cancel reaches grandchildren
        )
        _spawned.add(process.pid)
    try:
        _follow(
            process,
            outcome,
            deadline=deadline,
            on_line=on_line,
            cancel_requested=cancel_requested,
            on_tick=on_tick,
            must_stop_now=must_stop_now,
            term_grace_seconds=term_grace_seconds,
            tail_size=tail_size,
        )
    finally:
        # Whatever happened here (a failed log write included), nothing of it keeps running.
        if process.poll() is None:
            _kill_group(process)
        _kill_marked(env["SFP_WORKSPACE"], group=process.pid)
        with _spawned_lock:
            _spawned.discard(process.pid)
    outcome.exit_code = process.returncode


def _follow(
    process: subprocess.Popen,
    outcome: RunOutcome,
    *,
    deadline: float,
    on_line: Callable[[str, str], None],
    cancel_requested: Callable[[], bool],
    on_tick: Callable[[], None],
    must_stop_now: Callable[[], bool],
    term_grace_seconds: float,
    tail_size: int,
) -> None:
    """Stream the process's output until it exits, enforcing cancellation and the deadline."""
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
        if process.poll() is None and must_stop_now():
            outcome.lease_lost = True  # another attempt may start soon: no grace period
            _kill_group(process)
        stopping = outcome.cancelled or outcome.timed_out or outcome.lease_lost
        if process.poll() is None and not stopping:
            if cancel_requested():
                outcome.cancelled = True
                _terminate_group(process, term_grace_seconds)
            elif time.monotonic() > deadline:
                outcome.timed_out = True
                _terminate_group(process, term_grace_seconds)
    process.wait()
