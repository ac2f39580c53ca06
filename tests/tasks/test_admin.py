"""The console's task screens: list with filters, the log and attempts on the detail page, the
cancel action (the API's audited cancel)."""

import pytest
from django.utils import timezone

from apps.accounts.models import AuditEvent, TeamRole
from apps.tasks.models import TaskAttempt, TaskExecution, TaskLogLine
from tests.accounts.factories import DEFAULT_PASSWORD, TeamFactory, make_member
from tests.tasks.conftest import create_execution, submit

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
    assert AuditEvent.objects.filter(action="task.cancelled", target_id=operation_id).count() == 1


def test_the_detail_page_lists_every_attempt(console, owner_client):
    operation_id = submit(owner_client, "noop", {}).json()["operationId"]
    for number, message in ((1, "first boom"), (2, "second boom")):
        TaskAttempt.objects.create(
            execution_id=operation_id, number=number, worker_id=f"w{number}",
            started_at=timezone.now(), finished_at=timezone.now(), status="failed",
            exit_code=number, error={"message": message, "stack": ""},
        )  # fmt: skip
    detail = console.get(f"/admin/tasks/taskexecution/{operation_id}/change/")
    assert b"first boom" in detail.content and b"second boom" in detail.content


def test_a_cancel_the_service_refuses_is_reported_not_done(console, owner):
    # A recurring definition with no run in progress: the API answers 409, the admin says why.
    definition = create_execution(owner)
    TaskExecution.objects.filter(pk=definition.pk).update(schedule_type="recurring")
    answer = console.post(
        "/admin/tasks/taskexecution/",
        {"action": "cancel_executions", "_selected_action": [definition.pk]},
        follow=True,
    )
    assert f"Recurring task {definition.pk} has no run in progress".encode() in answer.content
    assert b"Cancellation requested for 0 task(s)." in answer.content
    assert TaskExecution.objects.get(pk=definition.pk).status == "pending"
    assert not AuditEvent.objects.filter(action="task.cancelled").exists()
