"""Projects over the API: owners onboard and delete, owners and application tokens patch by dot
path under optimistic concurrency, everyone with a role reads; every write is audited and every
rejected request leaves the project (and the audit log) exactly as it was."""

import threading

import pytest
from django.db import connection, transaction

from apps.accounts.models import AuditEvent, TeamRole
from apps.accounts.principal import principal_for_user
from apps.core.exceptions import Conflict, NotFound
from apps.projects import selectors, services
from apps.projects.models import Project
from tests.accounts.factories import (
    DEFAULT_PASSWORD,
    TeamFactory,
    access_token_for,
    app_token_for,
    make_member,
)
from tests.projects.factories import ProjectFactory
from tests.support.clients import bearer

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.projects.urls")]

PROJECTS = "/sfp/api/projects"


@pytest.fixture
def team():
    return TeamFactory()


@pytest.fixture
def owner(team):
    return make_member(team, TeamRole.OWNER, email="owner@example.com")


@pytest.fixture
def owner_client(owner):
    return bearer(access_token_for(owner))


@pytest.fixture
def app_client(owner):
    return bearer(app_token_for(owner)[1])


@pytest.fixture
def member_client(team):
    return bearer(access_token_for(make_member(team, TeamRole.MEMBER)))


def create(client, identifier="acme/app", remote_url="https://github.com/acme/app.git", **extra):
    body = {"identifier": identifier, "remoteUrl": remote_url} | extra
    return client.post(PROJECTS, body, format="json")


def patch(client, identifier, prop, value, **extra):
    body = {"property": prop, "value": value} | extra
    return client.patch(f"{PROJECTS}/{identifier}", body, format="json")


def snapshot(identifier: str) -> dict:
    return Project.objects.filter(identifier=identifier).values().get()


# --- onboarding -------------------------------------------------------------------------------


def test_owner_onboards_and_everyone_with_a_role_reads(owner_client, member_client, app_client):
    created = create(owner_client, configuration={"displayName": "App", "custom": {"x": 1}})
    assert created.status_code == 201
    body = created.json()
    assert body == {
        "identifier": "acme/app",
        "remoteUrl": "https://github.com/acme/app.git",
        "platform": "github",
        "createdAt": body["createdAt"],
        "updatedAt": body["updatedAt"],
        "version": 1,
        "configuration": {"displayName": "App", "custom": {"x": 1}},
        "integrations": [],
    }
    assert Project.objects.get().created_by == "owner@example.com"
    for client in (owner_client, member_client, app_client):
        assert client.get(PROJECTS).json() == [body]
        assert client.get(f"{PROJECTS}/acme%2Fapp").json() == body


@pytest.mark.parametrize(
    ("remote_url", "platform"),
    [
        ("https://github.com/acme/app.git", "github"),
        ("git@github.com:acme/app.git", "github"),
        ("ssh://git@ssh.github.com:443/acme/app.git", "github"),
        ("https://GitHub.com/acme/app", "github"),
        ("https://gitlab.com/acme/app.git", "gitlab"),
        ("git@gitlab.com:acme/app.git", "gitlab"),
        ("https://bitbucket.org/acme/app.git", "bitbucket"),
        ("git@bitbucket.org:acme/app.git", "bitbucket"),
        ("https://dev.azure.com/org/proj/_git/repo", "azure-devops"),
        ("https://org@dev.azure.com/org/proj/_git/repo", "azure-devops"),
        ("git@ssh.dev.azure.com:v3/org/proj/repo", "azure-devops"),
        ("https://org.visualstudio.com/proj/_git/repo", "azure-devops"),
        ("org@vs-ssh.visualstudio.com:v3/org/proj/repo", "azure-devops"),
        ("https://gitlab.acme.internal/acme/app.git", "other"),
        ("https://notgithub.com/acme/app.git", "other"),
        ("https://github.com.evil.example/acme/app.git", "other"),
        ("ssh://git@git.acme.internal:2222/acme/app.git", "other"),
    ],
)
def test_platform_is_detected_from_the_remote_url_host(remote_url, platform):
    assert services.detect_platform(remote_url) == platform


def test_platform_detection_reaches_the_dto(owner_client):
    azure = create(
        owner_client, "org/My Project/repo", "https://dev.azure.com/org/My%20Project/_git/repo"
    )
    gitlab_id = owner_client.post(
        PROJECTS,
        {"identifier": 4242, "remoteUrl": "https://gitlab.com/acme/app.git"},
        format="json",
    )
    nested = create(owner_client, "group/sub/app", "git@gitlab.com:group/sub/app.git")
    assert (azure.status_code, azure.json()["platform"]) == (201, "azure-devops")
    assert (gitlab_id.status_code, gitlab_id.json()["identifier"]) == (201, "4242")
    assert (nested.status_code, nested.json()["platform"]) == (201, "gitlab")


@pytest.mark.parametrize(
    ("identifier", "remote_url", "message"),
    [
        ("acme", "https://github.com/acme/app.git",
         "identifier 'acme' does not fit github: expected owner/repo"),
        ("acme/app/extra", "https://github.com/acme/app.git",
         "identifier 'acme/app/extra' does not fit github: expected owner/repo"),
        ("acme/app", "https://dev.azure.com/org/proj/_git/repo",
         "identifier 'acme/app' does not fit azure-devops: expected organization/project/repo"),
        ("4242", "https://github.com/acme/app.git",
         "identifier '4242' does not fit github: expected owner/repo"),
        ("acme/../app", "https://gitlab.com/acme/app.git",
         "identifier 'acme/../app' does not fit gitlab: expected group/project (subgroups "
         "allowed) or a numeric project id"),
        ("acme/my app", "https://github.com/acme/app.git",
         "identifier 'acme/my app' does not fit github: expected owner/repo"),
        ("acme/app;rm", "https://github.com/acme/app.git",
         "identifier 'acme/app;rm' does not fit github: expected owner/repo"),
        ("", "https://github.com/acme/app.git", "identifier: This field may not be blank."),
        ("acme/app", "http://github.com/acme/app.git",
         "remoteUrl must use https:// or ssh:// (or the scp-like git@host:path form)"),
        ("acme/app", "file:///srv/git/app.git",
         "remoteUrl must use https:// or ssh:// (or the scp-like git@host:path form)"),
        ("acme/app", "https://x:ghp_secret@github.com/acme/app.git",
         "remoteUrl must not contain a password or token"),
        ("acme/app", "https://github.com", "remoteUrl must name a repository path"),
        ("acme/app", "https://github.com/acme/app.git?ref=main",
         "remoteUrl must not have a query or fragment"),
        ("acme/app", "https://git hub.com/acme/app",
         "remoteUrl must be a single line of at most 2048 characters without spaces"),
        ("acme/app", "https://-bad-.com/acme/app", "remoteUrl has an invalid host '-bad-.com'"),
        ("acme/app", "github.com/acme/app",
         "remoteUrl must use https:// or ssh:// (or the scp-like git@host:path form)"),
    ],
)  # fmt: skip
def test_bad_identifiers_and_urls_are_refused_and_store_nothing(
    owner_client, identifier, remote_url, message
):
    response = create(owner_client, identifier, remote_url)
    assert response.status_code == 400
    assert response.json()["message"] == message
    assert not Project.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="project.").exists()


@pytest.mark.parametrize(
    ("configuration", "message"),
    [
        ([], "configuration must be an object"),
        ({"branches": "main"}, "configuration.branches must be a list of strings"),
        ({"devHubs": [1]}, "configuration.devHubs must be a list of strings"),
        ({"autoReleaseFinalization": "yes"}, "configuration.autoReleaseFinalization must be "
         "a boolean"),
        ({"workItems": {"jiraProjects": "ABC"}}, "configuration.workItems.jiraProjects must "
         "be a list of strings"),
        ({"workItems": {"baseUrl": "jira"}}, "configuration.workItems.baseUrl must be an "
         "http(s) URL"),
        ({"settings": {"buildTimeout": -5, "parallelBuilds": True}},
         "configuration.settings.buildTimeout must be a positive integer; "
         "configuration.settings.parallelBuilds must be a positive integer"),
        ({"displayName": 3, "settings": []}, "configuration.displayName must be a string; "
         "configuration.settings must be an object"),
    ],
)  # fmt: skip
def test_bad_configuration_is_refused_with_the_field_named(owner_client, configuration, message):
    response = create(owner_client, configuration=configuration)
    assert response.status_code == 400
    assert response.json()["message"] == message
    assert not Project.objects.exists()


def test_duplicate_is_a_409_and_keeps_the_first(owner_client):
    assert create(owner_client).status_code == 201
    again = create(owner_client, remote_url="https://gitlab.com/acme/app.git")
    assert again.status_code == 409
    assert again.json()["message"] == "The project already exists"
    assert Project.objects.get().platform == "github"
    assert AuditEvent.objects.filter(action="project.created").count() == 1


# --- identifiers in the path ------------------------------------------------------------------


def test_identifiers_work_url_encoded_and_plain(owner_client):
    create(owner_client)
    create(owner_client, "org/My Project/repo", "https://dev.azure.com/org/x/_git/repo")
    for path in ("acme%2Fapp", "acme/app", "acme%2fapp"):
        response = owner_client.get(f"{PROJECTS}/{path}")
        assert (response.status_code, response.json()["identifier"]) == (200, "acme/app")
    azure = owner_client.get(f"{PROJECTS}/org%2FMy%20Project%2Frepo")
    assert azure.json()["identifier"] == "org/My Project/repo"
    assert patch(owner_client, "acme%2Fapp", "configuration.displayName", "A").status_code == 200
    assert owner_client.delete(f"{PROJECTS}/org%2FMy%20Project%2Frepo").status_code == 200
    # Exact match only: no case folding, no trailing-slash variant, no prefix.
    for path in ("ACME%2Fapp", "acme/app/", "acme", "acme/app/extra"):
        missing = owner_client.get(f"{PROJECTS}/{path}")
        assert missing.status_code == 404
    assert owner_client.get(f"{PROJECTS}/acme").json()["message"] == "Project acme not found"


# --- patch ------------------------------------------------------------------------------------


def test_dot_path_patch_creates_nested_objects_and_bumps_the_version(owner_client, app_client):
    create(owner_client, configuration={"settings": {"parallelBuilds": 2}, "keep": True})
    first = patch(owner_client, "acme/app", "configuration.settings.buildTimeout", 90)
    assert first.status_code == 200
    assert first.json()["version"] == 2
    work_items = {"provider": "jira", "jiraProjects": ["ABC"], "baseUrl": "https://acme.net"}
    second = patch(app_client, "acme%2Fapp", "configuration.workItems", work_items, version=2)
    deep = patch(owner_client, "acme/app", "configuration.custom.a.b", [1, 2])
    assert second.status_code == 200 and deep.status_code == 200
    body = deep.json()
    assert body["version"] == 4
    assert body["configuration"] == {
        "settings": {"parallelBuilds": 2, "buildTimeout": 90},
        "keep": True,
        "workItems": work_items,
        "custom": {"a": {"b": [1, 2]}},
    }
    assert Project.objects.get().configuration == body["configuration"]


def test_patching_the_same_value_changes_nothing(owner_client):
    create(owner_client, configuration={"displayName": "App"})
    same = patch(owner_client, "acme/app", "configuration.displayName", "App")
    assert same.json()["version"] == 1
    assert not AuditEvent.objects.filter(action="project.updated").exists()


def test_whole_configuration_and_null_values(owner_client):
    create(owner_client, configuration={"displayName": "App"})
    replaced = patch(owner_client, "acme/app", "configuration", {"branches": ["main"]})
    assert replaced.json()["configuration"] == {"branches": ["main"]}
    cleared = patch(owner_client, "acme/app", "configuration.branches", None)
    assert cleared.status_code == 200
    assert cleared.json()["configuration"] == {"branches": None}


def test_patching_remote_url_detects_the_platform_again(owner_client):
    create(owner_client)
    moved = patch(owner_client, "acme/app", "remoteUrl", "git@bitbucket.org:acme/app.git")
    assert (moved.json()["platform"], moved.json()["version"]) == ("bitbucket", 2)
    assert moved.json()["remoteUrl"] == "git@bitbucket.org:acme/app.git"


@pytest.mark.parametrize(
    ("prop", "value", "status", "message"),
    [
        ("remoteUrl", "https://dev.azure.com/org/p/_git/r", 400,
         "identifier 'acme/app' does not fit azure-devops: expected organization/project/repo"),
        ("remoteUrl", 5, 400, "remoteUrl must be a string"),
        ("identifier", "acme/other", 400,
         "Property 'identifier' cannot be patched: use remoteUrl or configuration.<path>"),
        ("version", 9, 400,
         "Property 'version' cannot be patched: use remoteUrl or configuration.<path>"),
        ("platform", "gitlab", 400,
         "Property 'platform' cannot be patched: use remoteUrl or configuration.<path>"),
        ("configuration..x", 1, 400, "Property 'configuration..x' is not a valid dot path"),
        ("configuration.displayName.first", "A", 400,
         "configuration.displayName is not an object, so configuration.displayName.first "
         "cannot be set"),
        ("configuration.settings.buildTimeout", "10m", 400,
         "configuration.settings.buildTimeout must be a positive integer"),
        ("configuration.branches", "main", 400, "configuration.branches must be a list of strings"),
        ("configuration", ["not", "an", "object"], 400, "configuration must be an object"),
        ("configuration.displayName", "B", 409, "Version mismatch: the project is at version 1"),
    ],
)  # fmt: skip
def test_a_rejected_patch_changes_nothing(owner_client, prop, value, status, message):
    create(owner_client, configuration={"displayName": "App", "settings": {"buildTimeout": 5}})
    before = snapshot("acme/app")
    extra = {"version": 7} if status == 409 else {}
    response = patch(owner_client, "acme/app", prop, value, **extra)
    assert response.status_code == status
    assert response.json()["message"] == message
    assert snapshot("acme/app") == before
    assert not AuditEvent.objects.filter(action="project.updated").exists()


def test_patch_body_is_validated_and_unknown_projects_are_404(owner_client):
    create(owner_client)
    no_value = owner_client.patch(
        f"{PROJECTS}/acme/app", {"property": "configuration.x"}, format="json"
    )
    assert no_value.status_code == 400
    assert "value" in no_value.json()["details"]
    missing = patch(owner_client, "acme/nope", "configuration.x", 1)
    assert missing.status_code == 404


# --- optimistic concurrency -------------------------------------------------------------------


def test_a_stale_version_is_refused(owner_client, app_client):
    create(owner_client)
    first = patch(owner_client, "acme/app", "configuration.displayName", "One", version=1)
    second = patch(app_client, "acme/app", "configuration.displayName", "Two", version=1)
    assert first.status_code == 200
    assert second.status_code == 409
    assert second.json()["message"] == "Version mismatch: the project is at version 2"
    assert Project.objects.get().configuration == {"displayName": "One"}


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_patches_with_the_same_version_cannot_both_win(owner):
    """The first writer holds its transaction open after its check-and-write; the second starts
    meanwhile with the same version. Without the row lock both would read version 1 and win."""
    ProjectFactory(identifier="acme/app")
    actor = principal_for_user(owner)
    first_written, outcomes = threading.Event(), {}

    def first():
        try:
            with transaction.atomic():
                services.project_patch(
                    actor=actor,
                    identifier="acme/app",
                    property_path="configuration.displayName",
                    value="first",
                    version=1,
                )
                first_written.set()
                threading.Event().wait(0.5)  # keep the transaction (and its lock) open
            outcomes["first"] = "won"
        finally:
            connection.close()

    def second():
        try:
            first_written.wait(5)
            services.project_patch(
                actor=actor,
                identifier="acme/app",
                property_path="configuration.displayName",
                value="second",
                version=1,
            )
            outcomes["second"] = "won"
        except Conflict as refused:
            outcomes["second"] = refused.message
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert outcomes == {
        "first": "won",
        "second": "Version mismatch: the project is at version 2",
    }
    project = Project.objects.get()
    assert (project.version, project.configuration) == (2, {"displayName": "first"})


# --- roles ------------------------------------------------------------------------------------


def test_roles(owner_client, member_client, app_client, api_client):
    create(owner_client)
    anonymous = api_client.get(PROJECTS)
    assert (anonymous.status_code, anonymous.json()["message"]) == (401, "Authentication required")

    owner_only = "Forbidden - Requires role: owner"
    for client in (member_client, app_client):
        refused = create(client, "acme/other", "https://github.com/acme/other.git")
        assert (refused.status_code, refused.json()["message"]) == (403, owner_only)
        deleted = client.delete(f"{PROJECTS}/acme%2Fapp")
        assert (deleted.status_code, deleted.json()["message"]) == (403, owner_only)
    member_patch = patch(member_client, "acme/app", "configuration.x", 1)
    assert member_patch.status_code == 403
    assert member_patch.json()["message"] == "Forbidden - Requires role: owner, application"
    assert patch(app_client, "acme/app", "configuration.x", 1).status_code == 200
    assert member_client.get(f"{PROJECTS}/acme/app").status_code == 200
    assert list(Project.objects.values_list("identifier", "version")) == [("acme/app", 2)]


# --- audit and delete -------------------------------------------------------------------------


def test_every_write_is_audited_with_the_change(owner_client, app_client):
    create(owner_client, configuration={"settings": {"buildTimeout": 5}})
    patch(app_client, "acme/app", "configuration.settings.buildTimeout", 30)
    patch(owner_client, "acme/app", "configuration.workItems.provider", "jira")
    assert owner_client.delete(f"{PROJECTS}/acme%2Fapp").json() == {"success": True}

    events = list(
        AuditEvent.objects.filter(action__startswith="project.").order_by("occurred_at", "pk")
    )
    assert [(e.action, e.target_type, e.target_id) for e in events] == [
        ("project.created", "project", "acme/app"),
        ("project.updated", "project", "acme/app"),
        ("project.updated", "project", "acme/app"),
        ("project.deleted", "project", "acme/app"),
    ]
    created, by_token, nested, deleted = events
    assert created.after == {
        "identifier": "acme/app",
        "remoteUrl": "https://github.com/acme/app.git",
        "platform": "github",
    }
    assert created.actor_email == "owner@example.com"
    assert by_token.actor_role == "application"
    assert by_token.before == {"configuration.settings.buildTimeout": 5}
    assert by_token.after == {"configuration.settings.buildTimeout": 30, "version": 2}
    assert nested.before == {"configuration.workItems.provider": None}
    assert nested.after == {"configuration.workItems.provider": "jira", "version": 3}
    assert deleted.before["version"] == 3
    assert deleted.path == "/sfp/api/projects/acme/app"


def test_delete_removes_and_a_second_delete_is_404(owner_client):
    create(owner_client)
    assert owner_client.delete(f"{PROJECTS}/acme%2Fapp").status_code == 200
    assert not Project.objects.exists()
    again = owner_client.delete(f"{PROJECTS}/acme%2Fapp")
    assert (again.status_code, again.json()["message"]) == (404, "Project acme/app not found")
    assert owner_client.get(PROJECTS).json() == []


# --- selectors other apps use -----------------------------------------------------------------


def test_selectors_for_other_apps():
    ProjectFactory(identifier="acme/app")
    assert selectors.project_exists("acme/app")
    assert not selectors.project_exists("acme/App")
    assert selectors.project_get("acme/app").identifier == "acme/app"
    with pytest.raises(NotFound, match="Project acme/nope not found"):
        selectors.project_get("acme/nope")


# --- console ----------------------------------------------------------------------------------


@pytest.fixture
def console(client, owner):
    client.login(email=owner.email, password=DEFAULT_PASSWORD)
    return client


def _form(project: Project, configuration: str) -> dict:
    return {
        "remote_url": project.remote_url,
        "configuration": configuration,
        "loaded_version": project.version,
    }


def test_console_lists_and_edits_through_the_service(console):
    project = ProjectFactory(identifier="acme/app", configuration={"displayName": "App"})
    listing = console.get("/admin/projects/project/?q=acme&platform__exact=github")
    assert listing.status_code == 200 and b"acme/app" in listing.content
    saved = console.post(
        f"/admin/projects/project/{project.pk}/change/",
        _form(project, '{"displayName": "Renamed", "extra": 1}'),
    )
    assert saved.status_code == 302
    project.refresh_from_db()
    assert (project.version, project.configuration) == (2, {"displayName": "Renamed", "extra": 1})
    assert AuditEvent.objects.filter(action="project.updated", actor_email="owner@example.com")


def test_console_refuses_invalid_configuration_and_stale_forms(console):
    project = ProjectFactory(identifier="acme/app")
    invalid = console.post(
        f"/admin/projects/project/{project.pk}/change/", _form(project, '{"branches": "main"}')
    )
    assert invalid.status_code == 200
    assert b"configuration.branches must be a list of strings" in invalid.content
    stale = _form(project, '{"displayName": "Late"}')
    Project.objects.filter(pk=project.pk).update(version=5)
    refused = console.post(f"/admin/projects/project/{project.pk}/change/", stale, follow=True)
    assert b"Version mismatch: the project is at version 5" in refused.content
    project.refresh_from_db()
    assert (project.version, project.configuration) == (5, {})


def test_console_onboards_through_the_service(console):
    added = console.post(
        "/admin/projects/project/add/",
        {
            "identifier": "org/proj/repo",
            "remote_url": "https://dev.azure.com/org/proj/_git/repo",
            "configuration": "{}",
        },
    )
    assert added.status_code == 302
    project = Project.objects.get()
    assert (project.platform, project.created_by) == ("azure-devops", "owner@example.com")
    assert AuditEvent.objects.filter(action="project.created", target_id="org/proj/repo")
