"""Start the real server (`manage.py …`) in a subprocess on a free port and wait until it answers.

Used by tests that must see the process as an operator does: booting from an empty data
directory, refusing to start without secrets, reporting an unreachable database.
"""

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Variables a test must not inherit from the suite's own environment.
_INHERITED_CONFIG = (
    "DATABASE_URL",
    "REDIS_URL",
    "SFP_MODE",
    "SFP_DATA_DIR",
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_SECRET_KEY",
    "SFP_ADMIN_EMAIL",
    "SFP_ADMIN_PASSWORD",
    "SFP_ENCRYPTION_KEYS",
    "SFP_JWT_SECRET",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_environment(**overrides: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k not in _INHERITED_CONFIG}
    environment.update(overrides)
    return environment


def shared_database_environment(**overrides: str) -> dict[str, str]:
    """A server process sharing this test run's PostgreSQL database and Redis, so the test can
    set data up with the ORM and watch what the process does."""
    from django.db import connection

    redis_url = os.environ.get("REDIS_URL")
    assert redis_url, "this test needs Redis: make test and .ci/run export REDIS_URL"
    db = connection.settings_dict
    return clean_environment(
        DJANGO_SETTINGS_MODULE="sfpserver.settings.test",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        f"/{db['NAME']}",
        REDIS_URL=redis_url,
        **overrides,
    )


def manage(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class RunningServer:
    base_url: str
    process: subprocess.Popen
    output: list[str] = field(default_factory=list)

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
        request = urllib.request.Request(self.base_url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def read_output(self) -> str:
        """Everything the server printed so far (stdout and stderr), after stopping it."""
        return "".join(self.output)


@contextlib.contextmanager
def running_server(
    *args: str, env: dict[str, str], ready_path: str = "/sfp/api/ping", startup_timeout: float = 60
) -> Iterator[RunningServer]:
    """Run `manage.py <args> --port <free port>` and yield once `ready_path` answers at all."""
    port = free_port()
    command = [sys.executable, "manage.py", *args, "--port", str(port)]
    with running_command(
        command, port=port, env=env, ready_path=ready_path, startup_timeout=startup_timeout
    ) as server:
        yield server


@contextlib.contextmanager
def running_command(
    command: list[str],
    *,
    port: int,
    env: dict[str, str],
    ready_path: str = "/sfp/api/ping",
    startup_timeout: float = 60,
) -> Iterator[RunningServer]:
    """Run any server command that listens on `port`; yield once `ready_path` answers at all."""
    process = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = RunningServer(base_url=f"http://127.0.0.1:{port}", process=process)
    # Read its output all along: a server that logs a lot must never block on a full pipe.
    reader = threading.Thread(
        target=lambda: server.output.extend(iter(process.stdout.readline, "")), daemon=True
    )
    reader.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                reader.join(timeout=5)
                raise RuntimeError(f"server exited early:\n{server.read_output()}")
            try:
                server.get(ready_path)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not answer in time") from None
                time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=5)
