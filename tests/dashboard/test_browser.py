"""The dashboard in a real browser (Debian's Chromium through Playwright) against a real server.

Everything here runs on the **embedded default**, exactly as `make run` starts it: `manage.py
serve` with no database configured (SQLite in a fresh SFP_DATA_DIR, the in-memory channel layer,
the worker inside the server process), its first owner created from SFP_ADMIN_EMAIL /
SFP_ADMIN_PASSWORD. The only additions are the test doubles: SFP_CLI_PATH is the fake sfp CLI
(held halfway through every run until the test releases it), and the Salesforce orgs a build and a
release need are registered through the API against a local fake Salesforce. So it proves that on
the embedded default:

- the login form starts a session, and a task submitted through the "Run a task" form shows its
  progress bar reach 100 % and its later log lines arrive on its page without a reload;
- a task started elsewhere (through the API) appears in the overview's table without a reload;
- an owner approves a release pipeline's gate on /pipelines and watches it, and then the
  pipeline, change state.

"Without a reload" is checked with a marker set on `window` after the page loaded: a navigation
would lose it. Screenshots are kept in `test-artifacts/` at the repository root.
"""

import json
import re
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support import fake_sf
from tests.support.fakes.salesforce import FakeSalesforce
from tests.support.servers import PROJECT_ROOT, clean_environment, running_server
from tests.tasks.conftest import BUILD_DATA, fake_sfp

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
OWNER_EMAIL = "ops@example.com"
OWNER_PASSWORD = "a-long-dashboard-test-password"
TARGET = "uat@acme.example"
WAIT_MS = 30_000  # generous: another suite may be loading this 2-core machine


@pytest.fixture(scope="module")
def salesforce():
    with FakeSalesforce() as fake:
        yield fake


@pytest.fixture(scope="module")
def release_file(tmp_path_factory) -> Path:
    """Every run of the fake CLI waits halfway until this file exists."""
    return tmp_path_factory.mktemp("cli") / "released"


@pytest.fixture(scope="module")
def server(tmp_path_factory, salesforce, release_file):
    environment = clean_environment(
        SFP_DATA_DIR=str(tmp_path_factory.mktemp("data")),
        SFP_ADMIN_EMAIL=OWNER_EMAIL,
        SFP_ADMIN_PASSWORD=OWNER_PASSWORD,
        SFP_CLI_PATH=fake_sfp("held", state=release_file),
        SFP_SF_CLI_PATH=fake_sf.command(),
        SFP_SALESFORCE_INSECURE_HOSTS=salesforce.host,
        # The test reads the server's output only at the end: keep it short.
        LOG_LEVEL="WARNING",
    )
    with running_server("serve", env=environment) as running:
        yield running


def api(server, method: str, path: str, body: dict, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        server.base_url + path, data=json.dumps(body).encode(), headers=headers, method=method
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def owner_token(server, salesforce) -> str:
    """The owner's API session, after registering the orgs the build and the release use."""
    login = {"email": OWNER_EMAIL, "password": OWNER_PASSWORD}
    token = api(server, "POST", "/sfp/api/auth/admin/login", login)["access_token"]
    for username, is_devhub in ((BUILD_DATA["devhub"], True), (TARGET, False)):
        org = salesforce.add_org(username=username)
        body = {"sfdxAuthUrl": salesforce.auth_url(org.refresh_token), "isDevHub": is_devhub}
        api(server, "POST", "/sfp/api/auth/salesforce/register", body, token)
    return token


@pytest.fixture(scope="module")
def page(server, owner_token):
    if not CHROMIUM.exists():
        pytest.fail("the browser tests need Chromium: apt-get install -y chromium")
    ARTIFACTS.mkdir(exist_ok=True)
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(base_url=server.base_url)
        finally:
            browser.close()


def mark_this_page(page, name: str) -> None:
    page.evaluate(f"window.{name} = true")


def still_the_same_page(page, name: str) -> bool:
    return page.evaluate(f"window.{name} === true")


def test_log_in_submit_a_task_and_watch_it_finish_live(page, release_file):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    page.get_by_label("Email").fill(OWNER_EMAIL)
    page.get_by_label("Password").fill(OWNER_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Tasks")).to_be_visible()

    page.get_by_label("Operation").select_option("build")
    page.get_by_label("Data (JSON)").fill(json.dumps(BUILD_DATA))
    page.get_by_role("button", name="Run").click()
    expect(page).to_have_url(re.compile(r"/tasks/[0-9a-f]{32}$"))
    expect(page.locator(".message.success")).to_have_text("Task build submitted.")
    mark_this_page(page, "submittedTaskPage")

    log = page.locator("#log")
    progress = page.locator("#task-summary [data-field=progress]")
    status = page.locator("#task-summary [data-field=status]")
    # Held halfway ([2/4] is 50 %): what follows can only arrive on this page live.
    expect(log).to_contain_text("Step: Waiting to be released")
    expect(progress).to_have_attribute("aria-valuenow", "50")
    expect(status).to_have_text("active")
    expect(page.locator("[data-live-status]")).to_have_text("live")
    expect(log).not_to_contain_text("[3/4]")

    release_file.touch()
    expect(log).to_contain_text("[3/4] Processing service-ext")
    expect(log).to_contain_text("Exited with code 0")
    expect(status).to_have_text("completed")
    expect(progress).to_have_attribute("aria-valuenow", "100")
    expect(progress).to_contain_text("100%")
    assert still_the_same_page(page, "submittedTaskPage")
    page.screenshot(path=ARTIFACTS / "dashboard-task.png", full_page=True)


def test_a_task_started_elsewhere_appears_on_the_overview_live(page, server, owner_token):
    page.get_by_role("link", name="Tasks").click()
    expect(page.get_by_role("heading", name="Tasks")).to_be_visible()
    mark_this_page(page, "overviewPage")
    expect(page.locator("[data-live-status]")).to_have_text("live")

    started = api(server, "POST", "/sfp/api/tasks", {"type": "noop", "data": {}}, owner_token)
    row = page.locator(f'tr[data-operation-id="{started["operationId"]}"]')
    expect(row.locator("[data-field=status]")).to_have_text("completed")
    expect(row.locator("[data-field=progress]")).to_have_attribute("aria-valuenow", "100")
    assert still_the_same_page(page, "overviewPage")


def test_an_owner_approves_a_gate_and_watches_the_pipeline_finish(page, server, owner_token):
    body = {
        "type": "release",
        "data": {"repository": "acme/app", "releaseDefinition": "r1.yml", "targets": [TARGET]},
    }
    pipeline_id = api(server, "POST", "/sfp/api/pipelines", body, owner_token)["operationId"]
    page.get_by_role("link", name="Pipelines").click()
    pipeline = page.locator(f'section.pipeline[data-operation-id="{pipeline_id}"]')
    gate = pipeline.locator(f'tr[data-step="approve:{TARGET}"] [data-gate-state]')
    expect(pipeline).to_be_visible()
    mark_this_page(page, "pipelinesPage")

    # The dry run finishes and the gate opens while the page is shown.
    expect(gate).to_have_attribute("data-gate-state", "waiting")
    assert still_the_same_page(page, "pipelinesPage")
    pipeline.get_by_role("button", name="Approve").click()

    expect(page.locator(".message.success")).to_have_text(f"approve:{TARGET}: approved.")
    expect(gate).to_have_attribute("data-gate-state", "approved")
    expect(gate).to_have_text(f"Approved by {OWNER_EMAIL}")
    mark_this_page(page, "approvedPage")
    expect(pipeline.locator(".pipeline-head [data-field=status]")).to_have_text("completed")
    deploy = pipeline.locator(f'tr[data-step="deploy:{TARGET}"] [data-field=status]')
    expect(deploy).to_have_text("completed")
    assert still_the_same_page(page, "approvedPage")
    page.screenshot(path=ARTIFACTS / "dashboard-gate.png", full_page=True)


def test_the_lock_board_follows_a_lock_taken_elsewhere(page, server, owner_token):
    project = {"identifier": "acme/app", "remoteUrl": "https://github.com/acme/app.git"}
    api(server, "POST", "/sfp/api/projects", project, owner_token)
    environment = {"repositoryIdentifier": "acme/app", "name": "uat", "category": "test"}
    created = api(server, "POST", "/sfp/api/environments", environment, owner_token)
    page.get_by_role("link", name="Locks").click()
    row = page.locator('tr[data-repository="acme/app"][data-resource="env:uat"]')
    expect(row.locator("[data-field=state]")).to_have_text("free")
    mark_this_page(page, "locksPage")
    expect(page.locator("[data-live-status]")).to_have_text("live")

    lock = {"reason": "smoke test", "authType": "none"}
    api(server, "POST", f"/sfp/api/environments/{created['id']}/lock", lock, owner_token)
    expect(row.locator("[data-field=state]")).to_have_text("locked")
    # The live row shows what the server-rendered one does: the holder, then the reason.
    expect(row.locator("[data-field=holder]")).to_have_text(f"{OWNER_EMAIL} smoke test")
    release = row.get_by_role("button", name="Release")
    expect(release).to_be_visible()  # an owner's board redraws with the holder's ticket
    assert still_the_same_page(page, "locksPage")

    # A project and an environment created after the board loaded: its lock shows up too.
    later = {"identifier": "acme/web", "remoteUrl": "https://github.com/acme/web.git"}
    api(server, "POST", "/sfp/api/projects", later, owner_token)
    environment = {"repositoryIdentifier": "acme/web", "name": "qa", "category": "test"}
    created = api(server, "POST", "/sfp/api/environments", environment, owner_token)
    api(server, "POST", f"/sfp/api/environments/{created['id']}/lock", lock, owner_token)
    new_row = page.locator('tr[data-repository="acme/web"][data-resource="env:qa"]')
    expect(new_row.locator("[data-field=state]")).to_have_text("locked")
    assert still_the_same_page(page, "locksPage")

    # The owner frees the first one from the board (a form post: the page reloads).
    row.get_by_role("button", name="Release").click()
    expect(page.get_by_text("Released env:uat of acme/app.")).to_be_visible()
    expect(row.locator("[data-field=state]")).to_have_text("free")
    page.screenshot(path=ARTIFACTS / "dashboard-locks.png", full_page=True)
