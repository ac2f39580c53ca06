"""sfp runs in a checkout of the project's repository: cloned by a real `git` from FakeGitHub's
smart-HTTP endpoint with the project's integration (a PAT or a GitHub App's installation token,
sent only as an `Authorization` header in git's environment), at the task's branch."""

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import override_settings

from apps.accounts.models import AuditEvent
from apps.integrations.providers import clear_token_cache
from apps.projects.models import Project
from apps.projects.remotes import https_clone_url
from apps.tasks.models import TaskExecution
from tests.integrations.factories import sealed_integration
from tests.support.fakes.github import FakeGitHub
from tests.support.git_repos import bare_repository, head_of
from tests.tasks.conftest import BUILD_DATA, fake_sfp, submit, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

PAT = "github_pat_11CHECKOUT0123456789_abcdefghijklmnopqrstuvwxyz"


@pytest.fixture
def github(tmp_path):
    clear_token_cache()
    with FakeGitHub() as fake:
        fake.bare = bare_repository(tmp_path, branches=("main", "release/1.0"))
        fake.clone_url = fake.add_repository("acme/app", fake.bare)
        yield fake
    clear_token_cache()


@pytest.fixture
def project(github):
    return Project.objects.create(
        identifier="acme/app", remote_url=github.clone_url, platform="github"
    )


def _logs(client, operation_id) -> list[str]:
    return [line["message"] for line in client.get(f"/sfp/api/logs/{operation_id}").json()["logs"]]


def _build(client, **data) -> tuple[dict, list[str]]:
    with override_settings(SFP_CLI_PATH=fake_sfp("success")):
        operation_id = submit(client, "build", BUILD_DATA | data).json()["operationId"]
        status = wait_for(client, operation_id)
    return status, _logs(client, operation_id)


def test_a_build_runs_in_a_checkout_cloned_with_the_projects_pat(
    owner_client, org, github, project, start_worker
):
    github.add_pat(PAT, "octocat")
    sealed_integration(
        credentials={"token": PAT}, config={"apiUrl": github.url}, is_global=False
    ).projects.add(project)
    start_worker()

    status, messages = _build(owner_client)

    assert status["status"] == "completed", status
    assert (
        f"$ git clone --depth 1 --single-branch --branch main {github.clone_url} source" in messages
    )
    assert f"Checked out {head_of(github.bare)}: Work on main" in messages
    assert "Project sfdx-project.json found (checkout of main)" in messages
    assert messages.index("Project sfdx-project.json found (checkout of main)") > messages.index(
        f"Checked out {head_of(github.bare)}: Work on main"
    )
    clones = github.requests_to("GET", "/acme/app.git/info/refs")
    assert clones and all(r.headers.get("authorization", "").startswith("Basic ") for r in clones)
    assert all(PAT not in m for m in messages)
    assert AuditEvent.objects.filter(action="credential.read", target_type="repository").exists()
    result = owner_client.get(f"/sfp/api/tasks/{status['operationId']}/result").json()["result"]
    assert result["commit"] == head_of(github.bare)  # which commit was built


def test_a_github_app_installation_token_clones_the_tasks_branch(
    owner_client, org, github, project, start_worker
):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    github.add_app("4242", public.decode())
    github.add_installation("777", app_id="4242", account="acme")
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    sealed_integration(
        auth_type="app",
        credentials={"appId": "4242", "installationId": "777", "privateKey": private},
        config={"apiUrl": github.url},
        is_global=True,
    )
    start_worker()

    status, messages = _build(owner_client, branch="release/1.0")

    assert status["status"] == "completed", status
    assert "Project sfdx-project.json found (checkout of release/1.0)" in messages
    assert github.tokens_minted == 1


def test_a_refused_credential_fails_the_task_saying_so(
    owner_client, org, github, project, start_worker
):
    sealed_integration(credentials={"token": "ghp_not_issued_by_github"}, is_global=True)
    start_worker()

    status, messages = _build(owner_client)

    assert status["status"] == "failed"
    assert status["error"]["message"] == (
        "Could not check out acme/app at main: the repository host refused the credentials of "
        "the project's integration"
    )
    assert status["attempts"] == 1  # retrying would not change the answer
    assert not any(m.startswith("$ sfp") for m in messages)  # sfp never started
    assert "ghp_not_issued_by_github" not in str(status) + "".join(messages)


def test_an_unknown_branch_fails_with_gits_reason(owner_client, org, github, project, start_worker):
    github.add_pat(PAT, "octocat")
    sealed_integration(credentials={"token": PAT}, is_global=True)
    start_worker()

    status, _ = _build(owner_client, branch="no-such-branch")

    assert status["status"] == "failed"
    assert status["error"]["message"] == (
        "Could not check out acme/app at no-such-branch: "
        "Remote branch no-such-branch not found in upstream origin"
    )
    assert status["attempts"] == 1


def test_an_unregistered_repository_runs_without_a_checkout_and_says_so(
    owner_client, org, start_worker
):
    start_worker()
    status, messages = _build(owner_client)
    assert status["status"] == "completed"
    assert "Project acme/app is not registered: sfp runs without a checkout" in messages
    assert (
        not TaskExecution.objects.get(pk=status["operationId"])
        .log_lines.filter(message__startswith="$ git")
        .exists()
    )


@pytest.mark.parametrize(
    ("registered", "cloned"),
    [
        ("https://github.com/acme/app.git", "https://github.com/acme/app.git"),
        ("https://someone:secret@github.com/acme/app.git", "https://github.com/acme/app.git"),
        ("git@github.com:acme/app.git", "https://github.com/acme/app.git"),
        ("ssh://git@github.com:22/acme/app.git", "https://github.com/acme/app.git"),
        (
            "git@ssh.dev.azure.com:v3/acme/Platform/app",
            "https://dev.azure.com/acme/Platform/_git/app",
        ),
        ("file:///srv/git/app.git", "file:///srv/git/app.git"),
    ],
)
def test_remotes_are_cloned_over_https(registered, cloned):
    assert https_clone_url(registered) == cloned


def test_a_private_repository_without_an_integration_says_what_is_missing(
    owner_client, org, github, project, start_worker
):
    start_worker()
    status, _ = _build(owner_client)
    assert status["status"] == "failed"
    assert status["error"]["message"] == (
        "Could not check out acme/app at main: the repository needs credentials: "
        "add an integration for the project"
    )
    assert not github.requests_to("GET", "/user")  # no integration was there to try


def test_commands_stop_at_the_first_failure_and_share_one_workspace():
    from apps.tasks.runner import Command, run_cli

    lines = []
    outcome = run_cli(
        [
            Command(["sh", "-c", "echo made > marker"], announce="$ first"),
            Command(["cat", "marker"]),
            Command(["false"]),
            Command(["echo", "never"]),
        ],
        timeout_seconds=30,
        on_line=lambda stream, text: lines.append(text),
        cancel_requested=lambda: False,
    )
    assert lines == ["$ first", "made"]
    assert (outcome.exit_code, outcome.last_command) == (1, 2)


def test_a_tasks_repository_token_and_org_auth_url_appear_nowhere(
    owner_client, github, project, start_worker, caplog
):
    """The two secrets a build hands out — the integration's token (to git) and the org's auth
    URL (to the sf CLI) — are in no table, log line, task log, result or error, and sfp's own
    environment carries neither."""
    import logging

    from tests.integrations.factories import sealed_org
    from tests.integrations.test_no_plaintext import database_dump

    caplog.set_level(logging.DEBUG)
    planted_token = "github_pat_11PLANTED_checkout_token_0123456789abcdefghij"
    planted_refresh = "5Aep861PLANTEDrefreshTOKEN"
    github.add_pat(planted_token, "octocat")
    sealed_integration(credentials={"token": planted_token}, is_global=True)
    sealed_org(
        username="hub@acme.example",
        auth_url=f"force://PlatformCLI::{planted_refresh}@acme.my.salesforce.com",
        is_devhub=True,
    )
    start_worker()

    status, messages = _build(owner_client)

    assert status["status"] == "completed", status
    assert any(m.endswith("secrets_in_env=0") for m in messages)  # sfp's environment
    result = owner_client.get(f"/sfp/api/tasks/{status['operationId']}/result").content.decode()
    everywhere = "\n".join(
        [database_dump(), *messages, str(status), result]
        + [record.getMessage() + str(record.__dict__) for record in caplog.records]
    )
    header = base64.b64encode(f"x-access-token:{planted_token}".encode()).decode()
    for secret in (planted_token, header, planted_refresh):  # plain, and as git's header
        assert secret not in everywhere
