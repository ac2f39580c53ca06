"""The task suite's callers, org and worker fixtures, reused by the live tests."""

from tests.tasks.conftest import org, owner, owner_client, start_worker, team  # noqa: F401
