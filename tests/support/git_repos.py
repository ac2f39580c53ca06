"""Real git repositories for tests: a bare repository holding a minimal sfdx project, to be cloned
from a `file://` URL or served by FakeGitHub over git's smart HTTP protocol."""

import json
import subprocess
from pathlib import Path

SFDX_PROJECT = {
    "packageDirectories": [{"path": "force-app", "package": "core-crm", "default": True}],
    "sourceApiVersion": "61.0",
}


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", "-c", "init.defaultBranch=main", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd), "PATH": "/usr/bin:/bin"},
    ).stdout.strip()


def bare_repository(root: Path, name: str = "app", branches: tuple[str, ...] = ("main",)) -> Path:
    """`root/<name>.git`: one commit per branch, each with sfdx-project.json and a BRANCH file."""
    work = root / f"{name}-work"
    work.mkdir(parents=True)
    _git("init", "--quiet", cwd=work)
    identity = ("-c", "user.name=Test", "-c", "user.email=test@example.com")
    (work / "sfdx-project.json").write_text(json.dumps(SFDX_PROJECT, indent=2))
    (work / "force-app").mkdir()
    (work / "force-app" / ".keep").write_text("")
    for index, branch in enumerate(branches):
        if index:
            _git("checkout", "--quiet", "-b", branch, cwd=work)
        (work / "BRANCH").write_text(branch)
        _git("add", "-A", cwd=work)
        _git(*identity, "commit", "--quiet", "-m", f"Work on {branch}", cwd=work)
    bare = root / f"{name}.git"
    _git("clone", "--quiet", "--bare", str(work), str(bare), cwd=root)
    return bare


def head_of(bare: Path, branch: str = "main") -> str:
    return _git("rev-parse", branch, cwd=bare)
