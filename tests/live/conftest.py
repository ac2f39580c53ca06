"""The task suite's callers, org and worker fixtures, reused by the live tests."""

from tests.tasks.conftest import (  # noqa: F401
    member,
    member_client,
    org,
    owner,
    owner_client,
    start_worker,
    team,
)
