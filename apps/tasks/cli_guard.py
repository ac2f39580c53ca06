"""The guard between a worker and each CLI it runs, so the CLI's process tree dies with the worker.

The runner starts `python -I -S cli_guard.py <argv…>` in a new session (its own process group)
with the worker's pid in `SFP_GUARD_PARENT_PID`. The guard:

- asks the kernel for SIGTERM when the thread that started it dies (`PR_SET_PDEATHSIG`), and
  exits at once if the worker is already gone (the fork/prctl race);
- becomes a child subreaper (`PR_SET_CHILD_SUBREAPER`), so descendants whose parent exits (a CLI
  that daemonises, `setsid` included) re-parent to it instead of to init and stay reachable;
- runs the command in its process group, passing stdin/stdout/stderr through, and ends as it
  did: its exit code, or the same signal (re-raised on itself, core dumps off) when one ended it;
- when the command ends, or when the worker dies, SIGKILLs its group and every descendant it can
  find, reaps them, and only then exits (a SIGTERM from a live worker, its cancel or timeout,
  reaches the whole group: the command gets its grace period and the guard waits for it), so
  "the guard has exited" means "the tree is dead". When the worker died, it also wipes the
  workspace (`SFP_WORKSPACE`, files overwritten before unlinking) that nobody else would clean
  up until the next sweep.

It imports nothing of the project (it runs with `-I -S`, outside Django) and only the standard
library, so starting it costs a few tens of milliseconds. Linux only (prctl, /proc).
"""

import ctypes
import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found += [int(child) for child in handle.read().split()]
    except OSError:
        pass
    return found


def _descendants(pid: int) -> list[int]:
    seen: list[int] = []
    stack = _children(pid)
    while stack:
        child = stack.pop()
        if child not in seen:
            seen.append(child)
            stack += _children(child)
    return seen


def kill_tree(*, timeout: float = 10.0) -> None:
    """SIGKILL our process group and every descendant, reaping them until none is left."""
    deadline = time.monotonic() + timeout
    me = os.getpid()
    while True:
        for pid in _descendants(me):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        if not _descendants(me) or time.monotonic() > deadline:
            return
        time.sleep(0.01)


def wipe_workspace(workspace: str) -> None:
    """Overwrite every regular file outside the checkout with zeros, then remove the tree."""
    import shutil

    if not workspace or not os.path.isdir(workspace):
        return
    for root, dirs, files in os.walk(workspace, topdown=True):
        if root == workspace and "source" in dirs:
            dirs.remove("source")  # the checkout: code, not credentials (git's header is env-only)
        for name in files:
            _overwrite(os.path.join(root, name))
    shutil.rmtree(workspace, ignore_errors=True)


def _overwrite(path: str) -> None:
    try:
        if os.path.islink(path) or not os.path.isfile(path):
            return
        size = os.path.getsize(path)
        with open(path, "r+b", buffering=0) as handle:
            handle.write(b"\0" * size)
            os.fsync(handle.fileno())
        os.unlink(path)
    except OSError:
        pass


def main(argv: list[str]) -> int:
    parent = int(os.environ.pop("SFP_GUARD_PARENT_PID", "0"))
    workspace = os.environ.get("SFP_WORKSPACE", "")
    parent_died = False

    def on_signal(signum, frame):
        # The worker's own SIGTERM (cancel, timeout) reaches the whole group: the command gets
        # its grace period and the guard waits for it. The kernel's SIGTERM for a dead worker
        # comes after we were re-parented, so our parent is someone else by then.
        nonlocal parent_died
        if os.getppid() != parent:
            parent_died = True
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    if parent and os.getppid() != parent:
        wipe_workspace(workspace)
        return 137  # the worker died before we could watch it
    code = 137
    try:
        child = os.fork()
        if child == 0:
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGHUP, signal.SIG_DFL)
                os.execvp(argv[0], argv)  # noqa: S606 - the runner's argv, never a shell
            except OSError as error:
                print(f"{argv[0]}: {error.strerror}", file=sys.stderr, flush=True)
            os._exit(127)
        while True:
            pid, status = os.waitpid(-1, 0)  # also reaps re-parented orphans
            if pid == child:
                code = os.waitstatus_to_exitcode(status)
                break
    except KeyboardInterrupt:
        pass
    finally:
        kill_tree()
        if parent_died:
            wipe_workspace(workspace)
    if code < 0:  # end by the same signal, so the worker reads the same exit as without us
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(-code, signal.SIG_DFL)
        sys.stdout.flush()
        os.kill(os.getpid(), -code)
        code = 128 - code
    return code


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: cli_guard.py <command> [arguments…]")
    sys.exit(main(sys.argv[1:]))
