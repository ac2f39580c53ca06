"""The console's task screens: list with filters, the log on the detail page, cancel action."""

import pytest

from apps.accounts.models import TeamRole
from apps.tasks.models import TaskExecution, TaskLogLine
from tests.accounts.factories import DEFAULT_PASSWORD, TeamFactory, make_member
from tests.tasks.conftest import submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def console(client):
    owner = make_member(TeamFactory(), TeamRole.OWNER)
    client.login(email=owner.email, password=DEFAULT_PASSWORD)
    return client


def test_executions_list_detail_log_and_cancel(console, owner_client):
    operation_id = submit(owner_client, "noop", {}).json()["operationId"]
    execution = TaskExecution.objects.get(pk=operation_id)
    TaskLogLine.objects.create(
        execution=execution, seq=1, logged_at=execution.created_at, message="hello <b>"
    )
    listing = console.get("/admin/tasks/taskexecution/?status__exact=pending")
    assert listing.status_code == 200
    assert operation_id.encode() in listing.content
    detail = console.get(f"/admin/tasks/taskexecution/{operation_id}/change/")
    assert b"hello &lt;b&gt;" in detail.content
    console.post(
        "/admin/tasks/taskexecution/",
        {"action": "cancel_executions", "_selected_action": [operation_id]},
    )
    assert TaskExecution.objects.get(pk=operation_id).status == "cancelled"
