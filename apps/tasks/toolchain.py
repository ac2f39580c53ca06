"""The command-line tools a worker runs tasks with — git, the Salesforce CLI and sfp —: where each
resolves and which version answers, so a worker node that lacks one says so when it starts
rather than when its first task fails."""

import shlex
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings

# (setting, what it is for) — in the order a task uses them.
TOOLS = (
    ("SFP_GIT_PATH", "checks out the project's repository"),
    ("SFP_SF_CLI_PATH", "authorises the task's orgs (sf org login sfdx-url)"),
    ("SFP_CLI_PATH", "runs the operation (sfp)"),
)


@dataclass(frozen=True)
class Tool:
    setting: str
    purpose: str
    command: str
    path: str | None
    version: str | None

    @property
    def found(self) -> bool:
        return self.path is not None

    def describe(self) -> str:
        if not self.found:
            return (
                f"{self.setting}={self.command!r}: NOT FOUND — {self.purpose}; tasks that need "
                f"it will fail. Install it or point {self.setting} at it."
            )
        return f"{self.setting}={self.command!r}: {self.path} ({self.version or 'version unknown'})"


def _inspect(setting: str, purpose: str, timeout: float) -> Tool:
    command = getattr(settings, setting)
    argv = shlex.split(command)
    path = shutil.which(argv[0]) if argv else None
    version = None
    if path:
        try:
            answer = subprocess.run(  # noqa: S603 - the operator's configured tool, no shell
                [path, *argv[1:], "--version"], capture_output=True, text=True,
                timeout=timeout, stdin=subprocess.DEVNULL, check=False,
            )  # fmt: skip
            lines = [line.strip() for line in answer.stdout.splitlines() if line.strip()]
            version = lines[0] if lines else None
        except (OSError, subprocess.TimeoutExpired):
            version = None
    return Tool(setting=setting, purpose=purpose, command=command, path=path, version=version)


def inspect_toolchain(timeout: float = 15.0) -> list[Tool]:
    """Each tool, resolved and asked for its version (in parallel: the sf CLI is slow to start)."""
    with ThreadPoolExecutor(max_workers=len(TOOLS)) as pool:
        return list(pool.map(lambda tool: _inspect(*tool, timeout), TOOLS))
