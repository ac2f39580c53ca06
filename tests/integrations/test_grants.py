"""Task-scoped credential grants: only what is named, only for its worker, only while the task runs."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.models import AuditEvent, TeamRole
from apps.core.exceptions import InvalidRequest
from apps.integrations.grants import grant_end, grant_issue
from apps.integrations.models import CredentialGrant
from tests.accounts.factories import TeamFactory, access_token_for, app_token_for, make_member
from tests.integrations.factories import sealed_integration, sealed_org
from tests.support.clients import bearer

pytestmark = pytest.mark.django_db

ORG_URL = "force://PlatformCLI::5Aep_grant_refresh@acme.my.salesforce.com"
GITHUB = {"kind": "integration", "ref": {"provider": "github"}}
ORG = {"kind": "salesforce_org", "ref": {"username": "ci@acme.org"}}


@pytest.fixture
def owner():
    return make_member(TeamFactory(), TeamRole.OWNER)


@pytest.fixture
def worker(owner):
    return app_token_for(owner)


@pytest.fixture
def grant(worker):
    sealed_integration(credentials={"token": "ghp_grant_token"}, is_global=True)
    sealed_org(username="ci@acme.org", auth_url=ORG_URL)
    return grant_issue(operation_id="op-1", grantee_token_id=worker[0].pk, items=[GITHUB, ORG])


def redeem(client, grant, items=None):
    body = {} if items is None else {"items": items}
    return client.post(
        f"/sfp/api/flows/internal/credential-grants/{grant.pk}/redeem", body, format="json"
    )


def test_the_worker_redeems_exactly_what_is_named(worker, grant):
    response = redeem(bearer(worker[1]), grant)
    assert response.status_code == 200
    items = {item["kind"]: item for item in response.json()["items"]}
    assert items["integration"]["credentials"]["credentials"] == {"token": "ghp_grant_token"}
    assert items["salesforce_org"]["credentials"]["sfdxAuthUrl"] == ORG_URL
    reads = AuditEvent.objects.filter(action="credential.read")
    assert reads.count() == 2
    assert {r.target_type for r in reads} == {"integration", "salesforce_org"}
    assert all(r.after["operationId"] == "op-1" for r in reads)
    assert CredentialGrant.objects.get(pk=grant.pk).redemptions == 1


def test_a_subset_can_be_redeemed_but_nothing_unnamed(worker, grant):
    client = bearer(worker[1])
    only_org = redeem(client, grant, [ORG])
    assert [i["kind"] for i in only_org.json()["items"]] == ["salesforce_org"]
    other_org = {"kind": "salesforce_org", "ref": {"username": "prod@acme.org"}}
    refused = redeem(client, grant, [ORG, other_org])
    assert refused.status_code == 403
    assert refused.json()["message"].startswith("Grant does not name: salesforce_org")


def test_nobody_else_may_redeem(owner, grant):
    _, other_worker = app_token_for(owner)
    refused = redeem(bearer(other_worker), grant)
    assert refused.status_code == 403
    assert refused.json()["message"] == "This grant was issued to another worker"
    as_owner = redeem(bearer(access_token_for(owner)), grant)
    assert as_owner.status_code == 403
    assert as_owner.json()["message"] == "Forbidden - Requires role: application"
    assert not AuditEvent.objects.filter(action="credential.read").exists()


@pytest.mark.parametrize("reason", ["completed", "failed", "cancelled", "timed_out"])
def test_a_grant_ends_with_its_task(worker, grant, reason):
    assert grant_end(operation_id="op-1", reason=reason) == 1
    response = redeem(bearer(worker[1]), grant)
    assert response.status_code == 410
    assert response.json()["message"] == f"Grant has ended: its task {reason}"


def test_an_expired_grant_cannot_be_redeemed(worker, grant):
    CredentialGrant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(1))
    assert redeem(bearer(worker[1]), grant).status_code == 410


def test_unknown_grants_and_kinds(worker):
    missing = bearer(worker[1]).post(
        "/sfp/api/flows/internal/credential-grants/00000000-0000-0000-0000-000000000000/redeem",
        {},
        format="json",
    )
    assert missing.status_code == 404
    with pytest.raises(InvalidRequest, match="Unknown credential kind 'ssh_key'"):
        grant_issue(
            operation_id="op", grantee_token_id="tok_x", items=[{"kind": "ssh_key", "ref": {}}]
        )
