"""The task suite's callers and org fixtures, reused by the dashboard tests."""

from tests.tasks.conftest import org, owner, team  # noqa: F401
