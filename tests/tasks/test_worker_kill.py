"""kill -9 of real `manage.py runworker` processes in the middle of a slow install (the fake sfp's
`slow-tree`: sfp, a grandchild in its group and one that left its session), round after round,
on PostgreSQL: the CLI tree dies with its worker, a retry never overlaps the killed attempt, no
workspace is left behind, and every task ends completed or failed with a reason.

Bounded: KILL_ROUNDS kills of a worker that is running CLIs (~2.5 s a round, so the test takes
about 60-80 s in all), not the issue's 20 rounds one at a time.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict

import pytest
from django.db import connection

from apps.tasks.models import FINISHED_STATUSES, TaskExecution
from tests.support import fake_sf
from tests.support.servers import PROJECT_ROOT, clean_environment
from tests.tasks.conftest import FAKE_SFP, submit

pytestmark = pytest.mark.django_db(transaction=True)

KILL_ROUNDS = 20
TASKS = 10
LEASE_SECONDS = 3.0
_TAG = re.compile(r"art-\d+")


def _worker_env(workspaces) -> dict:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return clean_environment(
        DJANGO_SETTINGS_MODULE="sfpserver.settings.test",
        DATABASE_URL=url,
        SFP_WORKER_POLL_INTERVAL="0.05",
        SFP_WORKER_LEASE_SECONDS=str(LEASE_SECONDS),
        SFP_HOUSEKEEPING_INTERVAL_SECONDS="0.5",
        SFP_CLI_PATH=f"{sys.executable} {FAKE_SFP} --scenario slow-tree",
        SFP_SF_CLI_PATH=fake_sf.command(),
        SFP_CLI_TERM_GRACE_SECONDS="1",
        SFP_WORKSPACE_ROOT=str(workspaces),
    )


def _start(name: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "runworker", "--pool", "standard", "--slots", "2",
         "--worker-id", name, "--drain-seconds", "15"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _cli_processes() -> dict[int, tuple[str, str]]:
    """pid → (kind, task tag) of every live fake-sfp process and its grandchildren (a child
    that sfp forked and that has not exec'd yet still shows sfp's command line: it counts as
    a grandchild, not as a second sfp)."""
    found, parents = {}, {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as handle:
                argv = handle.read().decode(errors="replace").split("\0")
            with open(f"/proc/{name}/stat") as handle:
                state, parent = handle.read().rsplit(")", 1)[1].split()[:2]
        except OSError:
            continue
        if state == "Z":
            continue
        line = " ".join(argv)
        tag = _TAG.search(line)
        if not tag:
            continue
        if "cli_guard.py" in line:
            continue  # the guard, not the CLI
        if str(FAKE_SFP) in line:
            found[int(name)] = ("sfp", tag.group(0))
            parents[int(name)] = int(parent)
        elif "sfp-grandchild" in line:
            found[int(name)] = ("grandchild", tag.group(0))
    for pid, parent in parents.items():
        if found.get(parent, ("",))[0] == "sfp":
            found[pid] = ("grandchild", found[pid][1])
    return found


class Sampler(threading.Thread):
    """Samples /proc every 20 ms: the most sfp processes seen at once per task."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.most_at_once: dict[str, int] = defaultdict(int)
        self.samples = 0

    def run(self):
        while not self.stop.wait(0.02):
            per_task: dict[str, int] = defaultdict(int)
            for kind, tag in _cli_processes().values():
                if kind == "sfp":
                    per_task[tag] += 1
            for tag, count in per_task.items():
                self.most_at_once[tag] = max(self.most_at_once[tag], count)
            self.samples += 1


def _active_by(worker: str) -> list[str]:
    return [
        tag
        for (tag,) in TaskExecution.objects.filter(status="active", worker_id=worker).values_list(
            "data__artifactDir"
        )
    ]


def test_kill_9_workers_mid_install_leaves_no_orphan_no_overlap_no_workspace(
    owner_client, org, tmp_path
):
    workspaces = tmp_path / "workspaces"
    workspaces.mkdir()
    env = _worker_env(workspaces)
    ids = {}
    for index in range(TASKS):
        response = submit(
            owner_client,
            "install",
            {"repository": "acme/app", "targetOrg": org.username, "artifactDir": f"art-{index}"},
            retryConfig={"maxRetries": 10, "backoffSeconds": 0},
        )
        assert response.status_code == 201, response.content
        ids[f"art-{index}"] = response.json()["operationId"]

    sampler = Sampler()
    sampler.start()
    workers: dict[str, subprocess.Popen] = {}
    generation = 0

    def spawn(slot: str) -> None:
        nonlocal generation
        generation += 1
        workers[slot] = _start(f"w{slot}-{generation}", env)
        workers[slot].name = f"w{slot}-{generation}"

    kills, orphans_after_kill = 0, []
    started = time.monotonic()
    try:
        spawn("a")
        spawn("b")
        deadline = time.monotonic() + 120
        while kills < KILL_ROUNDS and time.monotonic() < deadline:
            # The victim: a worker running at least one CLI right now.
            victim = next(
                (slot for slot in "ab" if _active_by(workers[slot].name)),
                None,
            )
            running = {tag for _, tag in _cli_processes().values()}
            if victim is None or not running:
                time.sleep(0.1)
                continue
            doomed_tags = set(_active_by(workers[victim].name)) & running
            if not doomed_tags:
                time.sleep(0.05)
                continue
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait(timeout=10)
            kills += 1
            # Its CLI trees die with it, long before the lease lapses and a retry could start.
            gone_by = time.monotonic() + LEASE_SECONDS / 2
            while time.monotonic() < gone_by:
                # (No retry can start yet: the lease was renewed under a second before.)
                left = [
                    (pid, kind, tag)
                    for pid, (kind, tag) in _cli_processes().items()
                    if tag in doomed_tags
                ]
                if not left:
                    break
                time.sleep(0.02)
            else:
                orphans_after_kill.append(left)
            spawn(victim)
        assert kills == KILL_ROUNDS, f"only {kills} kills fitted in the time"
        # Let the survivors finish everything.
        finish_by = time.monotonic() + 90
        while (
            TaskExecution.objects.filter(pk__in=ids.values())
            .exclude(status__in=FINISHED_STATUSES)
            .exists()
        ):
            assert time.monotonic() < finish_by, "tasks still unfinished"
            time.sleep(0.2)
    finally:
        for process in workers.values():
            process.send_signal(signal.SIGTERM)
        for process in workers.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        sampler.stop.set()
        sampler.join()

    elapsed = time.monotonic() - started
    assert orphans_after_kill == []
    assert _cli_processes() == {}, "CLI processes outlived every worker"
    assert sampler.samples > 100
    assert dict(sampler.most_at_once) and max(sampler.most_at_once.values()) == 1, dict(
        sampler.most_at_once
    )
    assert list(workspaces.iterdir()) == []
    executions = list(TaskExecution.objects.filter(pk__in=ids.values()))
    for execution in executions:
        assert execution.status in ("completed", "failed"), execution.status
        if execution.status == "failed":
            assert execution.error["message"]
    retried = sum(execution.attempts - 1 for execution in executions)
    failed = sum(execution.status == "failed" for execution in executions)
    # Every kill cost at least one attempt, retried unless it was the task's last.
    assert retried >= KILL_ROUNDS - failed
    print(
        f"{kills} kill -9 rounds in {elapsed:.1f} s; attempts retried {retried}; "
        f"statuses {sorted(e.status for e in executions)}; samples {sampler.samples}"
    )
