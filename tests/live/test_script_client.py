"""The script client shown in docs/live.md, run exactly as written: it follows a real task, from
the `live` hint of `POST /sfp/api/tasks` on a daphne server, to its end, over a socket with a
bearer token and no Origin header (as every script connects)."""

import asyncio
import json
import re
import signal
import subprocess
import sys
import urllib.request

import pytest

from tests.accounts.factories import access_token_for
from tests.support.servers import PROJECT_ROOT, running_server, shared_database_environment

pytestmark = pytest.mark.django_db(transaction=True)

DOC = PROJECT_ROOT / "docs" / "live.md"


def _documented_client() -> str:
    found = re.search(r"<!-- script-client -->\n```python\n(.*?)```", DOC.read_text(), re.S)
    assert found, "docs/live.md lost its script client"
    return found.group(1)


def _submit(base_url: str, token: str) -> dict:
    request = urllib.request.Request(
        f"{base_url}/sfp/api/tasks",
        data=json.dumps({"type": "noop", "data": {"sleepSeconds": 0.5}}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        assert response.status == 201
        return json.loads(response.read())


def test_the_documented_client_follows_a_task_to_its_end(owner, capsys):
    source = _documented_client()
    assert len(source.strip().splitlines()) <= 20  # "a ~10-line client": short enough to copy
    namespace: dict = {}
    exec(compile(source, str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation
    environment = shared_database_environment(SFP_WORKER_POLL_INTERVAL="0.05")
    token = access_token_for(owner)
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "runworker", "--pool", "standard", "--slots", "1"],
        cwd=PROJECT_ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with running_server("serve", "--skip-bootstrap", env=environment) as server:
            response = _submit(server.base_url, token)
            follow = namespace["follow"](server.base_url, token, response["live"])
            status = asyncio.run(asyncio.wait_for(follow, 60))
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert status == "completed"
    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in printed[:2]] == ["ready", "subscribed"]
    assert printed[-1].startswith("task.status") or printed[-1].startswith("task.snapshot")
