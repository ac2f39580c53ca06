"""Environments and their locks over the API: grouping and filters, one default per category,
lock status embedded in every read, credentials only for the holder (owners and tokens), the
release category reserved for owners and tokens, every hand-out audited."""

import pytest
from django.test import override_settings

from apps.accounts.models import AuditEvent, TeamRole
from apps.environments.models import Environment
from apps.projects.models import Project
from tests.accounts.factories import TeamFactory, access_token_for, app_token_for, make_member
from tests.integrations.factories import sealed_org
from tests.support.clients import bearer
from tests.support.fakes.salesforce import FakeSalesforce

pytestmark = pytest.mark.django_db


@pytest.fixture
def team():
    return TeamFactory()


@pytest.fixture
def owner_client(team):
    return bearer(access_token_for(make_member(team, TeamRole.OWNER, email="owner@example.com")))


@pytest.fixture
def app_client(team):
    return bearer(app_token_for(make_member(team, TeamRole.OWNER, email="ci-owner@example.com"))[1])


@pytest.fixture
def member_client(team):
    return bearer(access_token_for(make_member(team, TeamRole.MEMBER, email="dev@example.com")))


@pytest.fixture
def project():
    return Project.objects.create(
        identifier="acme/app", remote_url="https://github.com/acme/app", platform="github"
    )


@pytest.fixture
def salesforce():
    with FakeSalesforce() as fake, override_settings(SFP_SALESFORCE_INSECURE_HOSTS=[fake.host]):
        yield fake


@pytest.fixture
def orgs(salesforce):
    made = {}
    for username in ("uat@acme.example", "prod@acme.example", "dev1@acme.example"):
        fake = salesforce.add_org(username=username)
        made[username] = (
            sealed_org(
                username=username,
                auth_url=salesforce.auth_url(fake.refresh_token),
                instance_url=salesforce.url,
            ),
            fake,
        )
    return made


def create(client, name, category, org=None, **extra):
    body = (
        {"repositoryIdentifier": "acme/app", "name": name, "category": category}
        | ({"salesforceUsername": org} if org else {})
        | extra
    )
    return client.post("/sfp/api/environments", body, format="json")


def test_create_list_grouped_and_filtered(owner_client, member_client, project, orgs):
    assert (
        create(
            owner_client, "UAT", "test", "uat@acme.example", tags=["qa", "eu"], branch="main"
        ).status_code
        == 201
    )
    assert (
        create(owner_client, "PROD", "release", "prod@acme.example", isDefault=True).status_code
        == 201
    )
    assert (
        create(
            owner_client, "DEV1", "dev", "dev1@acme.example", isActive=False, orchestrationOrder=2
        ).status_code
        == 201
    )
    grouped = member_client.get("/sfp/api/environments?repositoryIdentifier=acme/app").json()
    assert set(grouped) == {"dev", "test", "snapshot", "release"}
    assert [e["name"] for e in grouped["release"]] == ["PROD"]
    assert grouped["test"][0]["lockStatus"] == {
        "repository": "acme/app",
        "resource": "env:UAT",
        "isLocked": False,
        "currentLock": None,
        "queuedLocks": [],
    }
    flat = member_client.get("/sfp/api/environments?category=test&tags=qa&tags=eu").json()
    assert [e["name"] for e in flat] == ["UAT"]
    assert member_client.get("/sfp/api/environments?category=test&tags=qa,apac").json() == []
    assert [
        e["name"]
        for e in member_client.get("/sfp/api/environments?category=dev&isActive=false").json()
    ] == ["DEV1"]
    order = member_client.get(
        "/sfp/api/environments/orchestration-order?repositoryIdentifier=acme/app&category=dev&includeInactive=true"
    ).json()
    assert order == ["DEV1"]
    assert (
        member_client.get(
            "/sfp/api/environments/orchestration-order?repositoryIdentifier=acme/app&category=dev"
        ).json()
        == []
    )


def test_names_are_unique_per_repository_and_defaults_per_category(owner_client, project, orgs):
    create(owner_client, "UAT", "test", "uat@acme.example", isDefault=True)
    assert create(owner_client, "UAT", "test").status_code == 409
    create(owner_client, "UAT2", "test", isDefault=True)
    defaults = Environment.objects.filter(category="test", is_default=True).values_list(
        "name", flat=True
    )
    assert list(defaults) == ["UAT2"]
    assert create(owner_client, "X", "test", "ghost@acme.example").status_code == 400
    bad = owner_client.post(
        "/sfp/api/environments",
        {"repositoryIdentifier": "acme/none", "name": "A", "category": "dev"},
        format="json",
    )
    assert bad.status_code == 404


def test_members_cannot_create_update_or_delete(member_client, project):
    assert create(member_client, "UAT", "test").status_code == 403


def test_update_metadata_patch_and_delete_keep_the_org(owner_client, app_client, project, orgs):
    env_id = create(owner_client, "UAT", "test", "uat@acme.example", metadata={"a": 1}).json()["id"]
    updated = owner_client.put(
        f"/sfp/api/environments/{env_id}",
        {"branch": "release/1.0", "description": "UAT"},
        format="json",
    ).json()
    assert (updated["branch"], updated["description"]) == ("release/1.0", "UAT")
    patched = app_client.patch(
        f"/sfp/api/environments/{env_id}/metadata", {"testrun": "true", "a": None}, format="json"
    ).json()
    assert patched["metadata"] == {"testrun": "true"}
    assert owner_client.delete(f"/sfp/api/environments/{env_id}").json() == {"success": True}
    assert not Environment.objects.exists()
    from apps.environments.models import SalesforceOrg

    assert SalesforceOrg.objects.filter(username="uat@acme.example").exists()


def test_lock_hands_credentials_only_to_the_holder(
    owner_client, app_client, member_client, project, orgs
):
    env_id = create(owner_client, "UAT", "test", "uat@acme.example").json()["id"]
    held = app_client.post(
        f"/sfp/api/environments/{env_id}/lock",
        {"reason": "deploy", "durationMinutes": 10},
        format="json",
    ).json()
    assert held["status"] == "acquired"
    assert held["accessToken"]
    assert held["salesforceUsername"] == "uat@acme.example"

    queued = owner_client.post(
        f"/sfp/api/environments/{env_id}/lock", {"reason": "hotfix"}, format="json"
    ).json()
    assert (queued["status"], queued["queuePosition"]) == ("queued", 1)
    assert "accessToken" not in queued

    env = member_client.get(f"/sfp/api/environments/{env_id}").json()
    assert env["isLocked"] is True
    assert env["lockedBy"].startswith("token:")
    assert env["lockStatus"]["currentLock"]["lockReason"] == "deploy"
    assert env["lockStatus"]["queuedLocks"][0]["requestedBy"] == "owner@example.com"
    assert env["lockStatus"]["queuedLocks"][0]["estimatedWaitSeconds"] > 590

    not_holder = owner_client.get(
        f"/sfp/api/environments/{env_id}/credentials?ticketId={held['ticketId']}"
    )
    assert not_holder.status_code == 403
    assert (
        not_holder.json()["message"]
        == "Credentials go only to the holder of the environment's lock"
    )
    queued_creds = owner_client.get(
        f"/sfp/api/environments/{env_id}/credentials?ticketId={queued['ticketId']}"
    )
    assert queued_creds.json()["message"].endswith("is queued, not acquired: no credentials")
    as_url = app_client.get(
        f"/sfp/api/environments/{env_id}/credentials?ticketId={held['ticketId']}&authType=sfdxAuthUrl"
    ).json()
    assert as_url["sfdxAuthUrl"].startswith("force://")
    assert (
        member_client.get(
            f"/sfp/api/environments/{env_id}/credentials?ticketId={held['ticketId']}"
        ).status_code
        == 403
    )

    released = app_client.post(
        f"/sfp/api/environments/{env_id}/unlock", {"ticketId": held["ticketId"]}, format="json"
    )
    assert released.json()["status"] == "released"
    mine = owner_client.get(
        f"/sfp/api/environments/{env_id}/credentials?ticketId={queued['ticketId']}"
    )
    assert mine.status_code == 200
    assert mine.json()["accessToken"]
    reads = AuditEvent.objects.filter(action="credential.read", target_type="environment")
    assert reads.count() == 3
    assert all("force://" not in str(r.after) for r in reads)


def test_members_may_lock_but_never_get_credentials(member_client, owner_client, project, orgs):
    env_id = create(owner_client, "UAT", "test", "uat@acme.example").json()["id"]
    held = member_client.post(f"/sfp/api/environments/{env_id}/lock", {}, format="json").json()
    assert held["status"] == "acquired"
    assert "accessToken" not in held


def test_release_environments_are_for_owners_and_tokens(member_client, owner_client, project, orgs):
    env_id = create(owner_client, "PROD", "release", "prod@acme.example").json()["id"]
    denied = member_client.post(f"/sfp/api/environments/{env_id}/lock", {}, format="json")
    assert denied.status_code == 403
    assert (
        denied.json()["message"]
        == "Forbidden - Requires role: owner, application (locking a release environment)"
    )
    assert (
        owner_client.post(f"/sfp/api/environments/{env_id}/lock", {}, format="json").json()[
            "status"
        ]
        == "acquired"
    )


def test_waiting_for_a_lock_returns_when_it_is_acquired_or_times_out(
    owner_client, app_client, project, orgs
):
    env_id = create(owner_client, "UAT", "test", "uat@acme.example").json()["id"]
    app_client.post(f"/sfp/api/environments/{env_id}/lock", {"authType": "none"}, format="json")
    waited = owner_client.post(
        f"/sfp/api/environments/{env_id}/lock",
        {"wait": True, "waitTimeoutSeconds": 1, "authType": "none"},
        format="json",
    ).json()
    assert waited["status"] == "queued"


def test_listing_reads_every_lock_in_a_constant_number_of_queries(member_client, project):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.environments.services import locks

    def add_environments(first: int, count: int) -> None:
        for index in range(first, first + count):
            Environment.objects.create(project=project, name=f"env{index}", category="test")
            for label in ("ci", "qa"):  # a holder and one queued behind it
                locks.lock_request(
                    holder=locks.Holder(key="test:" + f"{label}-{index}", label=f"{label}-{index}"), repository="acme/app",
                    resource=f"env:env{index}", lease_seconds=600,
                )  # fmt: skip

    def queries_to_list() -> tuple[int, list]:
        with CaptureQueriesContext(connection) as captured:
            body = member_client.get("/sfp/api/environments?category=test").json()
        return len(captured), body

    add_environments(0, 3)
    few, _ = queries_to_list()
    add_environments(3, 27)
    many, body = queries_to_list()

    assert many == few, (few, many)
    assert len(body) == 30
    assert all(e["isLocked"] and len(e["lockStatus"]["queuedLocks"]) == 1 for e in body)
