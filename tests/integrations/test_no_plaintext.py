"""Planted secrets never reach the database, the logs or an error body: through creates,
updates, reads, grant redemptions, rejected requests and a key rotation."""

import base64
import io
import logging

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from apps.accounts.models import TeamRole
from apps.integrations.grants import grant_issue
from tests.accounts.factories import TeamFactory, access_token_for, app_token_for, make_member
from tests.support.clients import bearer
from tests.support.fakes.salesforce import FakeSalesforce

pytestmark = pytest.mark.django_db

OLD_KEY = "dGVzdC1vbmx5LXZhdWx0LWtleS0zMi1ieXRlcy0hISE="  # the test settings' key
NEW_KEY = base64.b64encode(b"r" * 32).decode()


def database_dump() -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
        tables = [row[0] for row in cursor.fetchall()]
        chunks = []
        for table in tables:
            cursor.execute(f'SELECT t::text FROM "{table}" t')  # noqa: S608 - catalogue names
            chunks += [row[0] for row in cursor.fetchall()]
    return "\n".join(chunks)


def test_planted_secrets_appear_nowhere(caplog):
    caplog.set_level(logging.DEBUG)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    pem_body = pem.splitlines()[5]
    planted = {
        "github pat": "ghp_PLANTED_first_pat_111111111111",
        "github pat v2": "ghp_PLANTED_second_pat_22222222222",
        "ado secret": "PLANTED~ado~client~secret~3333",
        "jira token": "PLANTED_jira_api_token_4444",
        "rejected pat": "ghp_PLANTED_rejected_55555555555",
        "app key": pem_body,
    }
    team = TeamFactory()
    owner = make_member(team, TeamRole.OWNER)
    owner_client = bearer(access_token_for(owner))
    worker_token, worker_raw = app_token_for(owner)
    responses = []

    def post(path, body):
        response = owner_client.post(path, body, format="json")
        responses.append(response.content.decode())
        return response

    with (
        FakeSalesforce() as salesforce,
        override_settings(SFP_SALESFORCE_INSECURE_HOSTS=[salesforce.host]),
    ):
        org = salesforce.add_org(username="ci@acme.example", client_secret="PLANTED_sf_secret_66")
        revoked = salesforce.add_org(username="old@acme.example")
        salesforce.revoke(revoked.refresh_token)
        planted |= {"sf refresh": org.refresh_token, "sf secret": "PLANTED_sf_secret_66",
                    "sf revoked refresh": revoked.refresh_token}  # fmt: skip

        created = post(
            "/sfp/api/integrations",
            {
                "provider": "github",
                "authType": "pat",
                "isGlobal": True,
                "credentials": {"token": planted["github pat"]},
            },
        )
        assert created.status_code == 201
        assert (
            post(
                "/sfp/api/integrations",
                {
                    "provider": "github",
                    "authType": "app",
                    "isGlobal": True,
                    "credentials": {"appId": "1", "installationId": "2", "privateKey": pem},
                },
            ).status_code
            == 201
        )
        assert (
            post(
                "/sfp/api/integrations",
                {
                    "provider": "azuredevops",
                    "authType": "service_principal",
                    "isGlobal": True,
                    "config": {"organization": "acme"},
                    "credentials": {
                        "clientId": "c",
                        "tenantId": "t",
                        "clientSecret": planted["ado secret"],
                    },
                },
            ).status_code
            == 201
        )
        assert (
            post(
                "/sfp/api/integrations",
                {
                    "provider": "jira",
                    "authType": "basic_auth",
                    "isGlobal": True,
                    "credentials": {"email": "a@b.c", "apiToken": planted["jira token"]},
                },
            ).status_code
            == 201
        )
        # Rejected requests carrying secrets.
        assert (
            post(
                "/sfp/api/integrations",
                {
                    "provider": "azuredevops",
                    "authType": "pat",
                    "isGlobal": True,
                    "credentials": {"token": planted["rejected pat"]},
                },
            ).status_code
            == 400
        )
        assert (
            post(
                "/sfp/api/auth/salesforce/register",
                {"sfdxAuthUrl": salesforce.auth_url(revoked.refresh_token)},
            ).status_code
            == 400
        )
        # An update, a registration, reads and a grant redemption.
        update = owner_client.put(
            f"/sfp/api/integrations/{created.json()['id']}",
            {"credentials": {"token": planted["github pat v2"]}},
            format="json",
        )
        assert update.status_code == 200
        assert (
            post(
                "/sfp/api/auth/salesforce/register",
                {"sfdxAuthUrl": salesforce.auth_url(org.refresh_token), "isDevHub": True},
            ).status_code
            == 201
        )
        assert post("/sfp/api/integrations/credentials", {"provider": "github"}).status_code == 200
        grant = grant_issue(
            operation_id="op-9",
            grantee_token_id=worker_token.pk,
            items=[{"kind": "salesforce_org", "ref": {"username": "ci@acme.example"}},
                   {"kind": "integration", "ref": {"provider": "jira"}}],
        )  # fmt: skip
        redeemed = bearer(worker_raw).post(
            f"/sfp/api/flows/internal/credential-grants/{grant.pk}/redeem", {}, format="json"
        )
        assert redeemed.status_code == 200
        assert planted["jira token"] in redeemed.content.decode()  # served to the worker only

    with override_settings(SFP_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        output = io.StringIO()
        call_command("rotate_encryption_key", stdout=output)
        assert "Verified 5 secret(s)" in output.getvalue()

    dump = database_dump()
    logs = "\n".join(record.getMessage() + str(record.__dict__) for record in caplog.records)
    bodies = "\n".join(responses)
    for name, secret in planted.items():
        assert secret not in dump, f"{name} is stored in clear"
        assert secret not in logs, f"{name} appears in a log line"
    for name in ("rejected pat", "sf revoked refresh"):
        assert planted[name] not in bodies, f"{name} is echoed in an error body"
