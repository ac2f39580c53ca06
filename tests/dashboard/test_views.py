"""The dashboard's pages through Django's test client: the login session (same checks, throttling
and audit as the API), login required everywhere, the task form calling the API's own service,
and pipeline gates decided by owners only."""

import json

import pytest
from django.test import Client, override_settings

from apps.accounts.models import AuditEvent, Membership, TeamRole
from apps.accounts.principal import principal_for_user
from apps.environments.models import Category, Environment
from apps.environments.services import locks
from apps.projects.models import Project
from apps.tasks import pipelines
from apps.tasks.models import TaskAttempt, TaskExecution, TaskLogLine, TaskStatus, TriggerKind
from apps.tasks.services import pipeline_submit
from tests.accounts.factories import DEFAULT_PASSWORD, UserFactory, make_member
from tests.integrations.factories import sealed_org
from tests.tasks.conftest import AUTH_URL, BUILD_DATA

pytestmark = pytest.mark.django_db

TARGET = "uat@acme.example"
GATE = f"approve:{TARGET}"


@pytest.fixture
def member(team):
    return make_member(team, TeamRole.MEMBER, email="dev@example.com")


def session_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def owner_session(owner):
    return session_for(owner)


@pytest.fixture
def member_session(member):
    return session_for(member)


def log_in(client: Client, email: str, password: str, next_url: str = ""):
    return client.post("/login", {"email": email, "password": password, "next": next_url})


# --- logging in and out -----------------------------------------------------------------------


def test_the_login_form_starts_a_session_audited_like_the_api(owner):
    client = Client()
    assert client.get("/login").status_code == 200
    response = log_in(client, "Owner@Example.com ", DEFAULT_PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    assert b"owner@example.com" in page.content
    success = AuditEvent.objects.get(action="login.succeeded")
    assert success.target_id == "owner@example.com"
    assert success.after == {"session": "browser"}


def test_a_wrong_password_is_refused_and_counted(owner):
    client = Client()
    response = log_in(client, "owner@example.com", "not-the-password")
    assert response.status_code == 200
    assert b"Invalid credentials or insufficient permissions" in response.content
    assert client.get("/")["Location"] == "/login?next=/"
    assert AuditEvent.objects.filter(action="login.failed", target_id="owner@example.com").exists()


def test_users_without_a_team_cannot_log_in():
    loner = UserFactory(email="loner@example.com")
    response = log_in(Client(), loner.email, DEFAULT_PASSWORD)
    assert b"Invalid credentials or insufficient permissions" in response.content


@override_settings(SFP_LOGIN_MAX_FAILURES_PER_EMAIL=2)
def test_logins_are_throttled_like_the_api(owner):
    client = Client()
    for _ in range(2):
        log_in(client, "owner@example.com", "wrong")
    response = log_in(client, "owner@example.com", DEFAULT_PASSWORD)
    assert response.status_code == 429
    assert response["Retry-After"]
    assert b"Too many failed login attempts" in response.content


@pytest.mark.parametrize(
    "path",
    ["/", "/tasks", "/tasks/abc", "/locks", "/pipelines", "/fragments/tasks", "/fragments/locks"],
)
def test_every_page_requires_a_login(path):
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/login?next={path}"


def test_login_goes_back_to_next_but_never_off_site(owner):
    assert log_in(Client(), owner.email, DEFAULT_PASSWORD, "/locks")["Location"] == "/locks"
    elsewhere = log_in(Client(), owner.email, DEFAULT_PASSWORD, "https://evil.example/")
    assert elsewhere["Location"] == "/"


def test_logout_is_a_post_that_ends_the_session(owner_session):
    assert owner_session.get("/logout").status_code == 405
    response = owner_session.post("/logout")
    assert response["Location"] == "/login"
    assert owner_session.get("/").status_code == 302


def test_a_user_who_lost_every_team_is_signed_out(owner, owner_session):
    Membership.objects.filter(user=owner).delete()
    response = owner_session.get("/")
    assert response["Location"].startswith("/login")
    assert "_auth_user_id" not in owner_session.session


# --- tasks ------------------------------------------------------------------------------------


def test_the_form_submits_through_the_api_service(owner, owner_session, org):
    response = owner_session.post("/", {"type": "build", "data": json.dumps(BUILD_DATA)})
    execution = TaskExecution.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/tasks/{execution.operation_id}"
    assert execution.type == "build"
    assert execution.data["devhub"] == "hub@acme.example"
    assert execution.triggered_by_kind == TriggerKind.USER
    assert execution.triggered_by_label == "owner@example.com"
    assert AuditEvent.objects.filter(action="task.submitted", actor_email=owner.email).exists()
    page = owner_session.get(response["Location"])
    assert b"Task build submitted." in page.content
    assert b"hub@acme.example" in page.content


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"type": "build", "data": "{not json"}, b"Not valid JSON"),
        ({"type": "deploy-everything", "data": "{}"}, b"Unknown task type &#x27;deploy-everything"),
        ({"type": "build", "data": '{"repository": "acme/app"}'}, b"data.devhub: This field"),
        ({"type": "build", "data": json.dumps(BUILD_DATA)}, b"Org hub@acme.example is not"),
    ],
)
def test_refused_submissions_show_why_and_create_nothing(owner_session, form, message):
    response = owner_session.post("/", form)
    assert response.status_code == 400
    assert message in response.content
    assert not TaskExecution.objects.exists()


def test_members_are_offered_and_allowed_only_their_operations(member_session):
    page = member_session.get("/")
    assert b'value="build"' in page.content
    assert b'value="install"' not in page.content
    data = {"repository": "acme/app", "targetOrg": TARGET}
    response = member_session.post("/", {"type": "install", "data": json.dumps(data)})
    assert response.status_code == 400
    assert b"Forbidden - Requires role: owner, application" in response.content
    assert not TaskExecution.objects.exists()


def running_build(**fields) -> TaskExecution:
    return TaskExecution.objects.create(
        **{
            "type": "build",
            "data": BUILD_DATA,
            "task_path": "apps.tasks.tasks.build",
            "triggered_by_kind": TriggerKind.USER,
            "triggered_by_label": "owner@example.com",
        }
        | fields
    )


def test_the_overview_lists_running_tasks_first(owner_session):
    finished = running_build(status=TaskStatus.COMPLETED, progress=100)
    running = running_build(status=TaskStatus.ACTIVE, progress=40, current_step="Deploying")
    content = owner_session.get("/").content.decode()
    assert content.index(running.operation_id) < content.index(finished.operation_id)
    assert 'aria-valuenow="40"' in content and "Deploying" in content


def test_the_task_page_shows_the_state_and_the_log_tail(owner_session):
    execution = running_build(status=TaskStatus.ACTIVE, progress=25)
    TaskLogLine.objects.bulk_create(
        TaskLogLine(execution=execution, seq=n, logged_at=execution.created_at, message=f"line {n}")
        for n in (1, 2, 3)
    )
    page = owner_session.get(f"/tasks/{execution.operation_id}")
    assert page.status_code == 200
    assert b'data-last-line-seq="3"' in page.content
    assert b"line 1" in page.content and b"line 3" in page.content
    assert b'aria-valuenow="25"' in page.content
    assert b"Commit</dt>" not in page.content  # not built yet
    assert owner_session.get("/tasks/unknown").status_code == 404
    built = running_build(status=TaskStatus.COMPLETED, result={"commit": "0123456789ab" + "c" * 28})
    assert b">0123456789ab</code>" in owner_session.get(f"/tasks/{built.operation_id}").content


def test_the_task_page_lists_every_attempt_with_its_own_error(owner_session):
    execution = running_build(status=TaskStatus.ACTIVE)
    TaskAttempt.objects.create(
        execution=execution, number=1, worker_id="worker-a", started_at=execution.created_at,
        finished_at=execution.created_at, status="failed", exit_code=2,
        error={"message": "socket hang up", "stack": ""},
    )  # fmt: skip
    TaskAttempt.objects.create(
        execution=execution, number=2, worker_id="worker-b", started_at=execution.created_at
    )
    page = owner_session.get(f"/tasks/{execution.operation_id}").content.decode()
    assert "<h2>Attempts</h2>" in page
    assert "socket hang up" in page and "worker-a" in page and "worker-b" in page


def test_row_fragments_answer_a_row_or_nothing_for_a_gate(owner_session, waiting_gate):
    build = running_build()
    row = owner_session.get(f"/fragments/tasks/{build.operation_id}")
    assert row.status_code == 200 and row.content.strip().startswith(b"<tr")
    assert owner_session.get(f"/fragments/tasks/{waiting_gate.operation_id}").status_code == 204
    assert owner_session.get("/fragments/tasks/unknown").status_code == 404


# --- locks ------------------------------------------------------------------------------------


def test_the_lock_board_shows_holders_and_queues(owner, owner_session):
    project = Project.objects.create(
        identifier="acme/app", remote_url="https://github.com/acme/app", platform="github"
    )
    Environment.objects.create(project=project, name="uat", category=Category.TEST)
    Environment.objects.create(project=project, name="prod", category=Category.RELEASE)
    for label in ("ci-runner", "release-bot"):
        locks.lock_request(
            holder=locks.Holder(key="test:" + label, label=label),
            repository="acme/app",
            resource="env:uat",
            lease_seconds=600,
            reason="deploying",
        )
    page = owner_session.get("/locks").content.decode()
    assert "acme/app" in page and "prod" in page
    assert 'data-resource="env:uat"' in page
    assert "ci-runner" in page and '<span class="chip">release-bot</span>' in page
    assert page.count('class="badge locked"') == 1


# --- pipeline gates ---------------------------------------------------------------------------


@pytest.fixture
def waiting_gate(owner, django_capture_on_commit_callbacks):
    """A release pipeline to one target whose dry run is done: it waits at the target's gate.
    The dry run is recorded directly instead of being run by a worker."""
    sealed_org(username=TARGET, auth_url=AUTH_URL)
    with django_capture_on_commit_callbacks(execute=False):
        parent = pipeline_submit(
            actor=principal_for_user(owner),
            type="release",
            data={"repository": "acme/app", "releaseDefinition": "r1.yml", "targets": [TARGET]},
        )
    TaskExecution.objects.create(
        parent=parent,
        step=f"dry-run:{TARGET}",
        type="release",
        status=TaskStatus.COMPLETED,
        task_path="apps.tasks.tasks.release",
        triggered_by_kind=TriggerKind.SCHEDULE,
    )
    with django_capture_on_commit_callbacks(execute=False):
        pipelines.advance(parent.operation_id)
    return parent.children.get(step=GATE)


def decide(client, gate, decision="approve", comment=""):
    return client.post(
        f"/pipelines/{gate.parent_id}/decide",
        {"step": gate.step, "decision": decision, "comment": comment},
    )


def test_members_see_the_gate_without_buttons_and_cannot_decide_it(member_session, waiting_gate):
    page = member_session.get("/pipelines")
    assert b'data-gate-state="waiting"' in page.content
    assert b"Approve</button>" not in page.content
    response = decide(member_session, waiting_gate)
    assert response.status_code == 403
    assert b"Forbidden - Requires role: owner" in response.content
    waiting_gate.refresh_from_db()
    assert waiting_gate.status == TaskStatus.PENDING
    assert not AuditEvent.objects.filter(action="pipeline.gate_approved").exists()


def test_owners_approve_a_gate_and_the_deploy_starts(owner_session, waiting_gate):
    page = owner_session.get("/pipelines")
    assert b"Approve</button>" in page.content and b"Reject</button>" in page.content
    response = decide(owner_session, waiting_gate, comment="ship it")
    assert response.status_code == 302 and response["Location"] == "/pipelines"
    waiting_gate.refresh_from_db()
    assert waiting_gate.status == TaskStatus.COMPLETED
    assert waiting_gate.result["by"] == "owner@example.com"
    assert waiting_gate.result["comment"] == "ship it"
    assert TaskExecution.objects.filter(step=f"deploy:{TARGET}").exists()
    assert AuditEvent.objects.filter(action="pipeline.gate_approved").exists()
    after = owner_session.get("/pipelines").content
    assert f"{GATE}: approved.".encode() in after
    assert b'data-gate-state="approved"' in after and b"Approved by owner@example.com" in after


def test_deciding_a_gate_no_longer_waiting_is_a_message_not_an_error(owner_session, waiting_gate):
    decide(owner_session, waiting_gate, "reject")
    response = decide(owner_session, waiting_gate)
    assert response.status_code == 302
    page = owner_session.get("/pipelines").content
    assert b"has no gate waiting" in page
    assert b'data-gate-state="rejected"' in page


# --- cancelling and retrying ------------------------------------------------------------------


def test_the_submitter_cancels_a_pending_task_from_its_page(owner, owner_session):
    execution = running_build(status=TaskStatus.PENDING, triggered_by_id=str(owner.pk))
    page = owner_session.get(f"/tasks/{execution.operation_id}")
    assert b"Cancel task</button>" in page.content
    response = owner_session.post(f"/tasks/{execution.operation_id}/cancel")
    assert response.status_code == 302
    execution.refresh_from_db()
    assert execution.status == TaskStatus.CANCELLED
    assert AuditEvent.objects.filter(action="task.cancelled").exists()
    after = owner_session.get(f"/tasks/{execution.operation_id}").content
    assert b"Cancelled." in after and b"Cancel task</button>" not in after


def test_a_member_cannot_cancel_someone_elses_task(member_session):
    execution = running_build(status=TaskStatus.PENDING, triggered_by_id="someone-else")
    response = member_session.post(f"/tasks/{execution.operation_id}/cancel", follow=True)
    assert b"Only owners, application tokens or the submitter can cancel a task" in response.content
    execution.refresh_from_db()
    assert execution.status == TaskStatus.PENDING
    assert not AuditEvent.objects.filter(action="task.cancelled").exists()


def test_owners_retry_a_failed_step_and_members_cannot(owner_session, member_session, waiting_gate):
    dry_run = waiting_gate.parent.children.get(step=f"dry-run:{TARGET}")
    TaskExecution.objects.filter(pk=dry_run.pk).update(
        status=TaskStatus.FAILED, error={"message": "sfp exited with code 1", "stack": ""}
    )
    assert b"Retry</button>" in owner_session.get("/pipelines").content
    assert b"Retry</button>" not in member_session.get("/pipelines").content
    refused = member_session.post(
        f"/pipelines/{waiting_gate.parent_id}/retry", {"step": dry_run.step}
    )
    assert refused.status_code == 403
    dry_run.refresh_from_db()
    assert dry_run.status == TaskStatus.FAILED

    response = owner_session.post(
        f"/pipelines/{waiting_gate.parent_id}/retry", {"step": dry_run.step}, follow=True
    )
    assert f"{dry_run.step}: running again.".encode() in response.content
    dry_run.refresh_from_db()
    assert dry_run.status == TaskStatus.PENDING
    assert AuditEvent.objects.filter(action="pipeline.step_retried").exists()


def test_all_tasks_are_paged_and_filtered(owner_session):
    for index in range(30):
        running_build(
            status=TaskStatus.COMPLETED if index % 2 else TaskStatus.FAILED,
            triggered_by_label=f"user{index}@example.com",
        )
    first = owner_session.get("/tasks").content.decode()
    assert "30 tasks, newest first" in first and "Page 1 of 2" in first
    assert first.count('<tr data-operation-id="') == 25
    second = owner_session.get("/tasks?page=2").content.decode()
    assert second.count('<tr data-operation-id="') == 5

    failed = owner_session.get("/tasks?status=failed").content.decode()
    assert "15 tasks" in failed and "Page 1 of 1" not in failed  # one page: no pager
    assert "status-completed" not in failed and "status-failed" in failed

    one = owner_session.get("/tasks?q=user7%40").content.decode()
    assert "1 task," in one and "user7@example.com" in one
    nothing = owner_session.get("/tasks?status=bogus&type=nope").content.decode()
    assert (
        "No task matches." in nothing
    )  # an unknown status is ignored, an unknown type matches none


def test_owners_release_a_stuck_lock_from_the_board_and_members_cannot(
    owner, owner_session, member_session
):
    project = Project.objects.create(
        identifier="acme/app", remote_url="https://github.com/acme/app", platform="github"
    )
    Environment.objects.create(project=project, name="uat", category=Category.TEST)
    held = locks.lock_request(
        holder=locks.Holder(key="test:" + "stuck-ci", label="stuck-ci"), repository="acme/app", resource="env:uat",
        lease_seconds=3600,
    )  # fmt: skip
    waiting = locks.lock_request(
        holder=locks.Holder(key="test:" + "next-ci", label="next-ci"), repository="acme/app", resource="env:uat",
        lease_seconds=600,
    )  # fmt: skip
    assert b"Release</button>" in owner_session.get("/locks").content
    assert b"Release</button>" not in member_session.get("/locks").content

    refused = member_session.post("/locks/release", {"ticket": str(held.ticket_id)})
    assert refused.status_code == 403
    held.refresh_from_db()
    assert held.status == "acquired"

    response = owner_session.post("/locks/release", {"ticket": str(held.ticket_id)}, follow=True)
    assert b"Released env:uat of acme/app." in response.content
    held.refresh_from_db()
    waiting.refresh_from_db()
    assert (held.status, waiting.status) == ("released", "acquired")  # the next in line holds it
    assert held.released_by == "force-released by owner@example.com"
    assert AuditEvent.objects.filter(action="lock.force_released").exists()
