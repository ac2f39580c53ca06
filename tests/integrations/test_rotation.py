"""`manage.py rotate_encryption_key`: every secret moves to the newest key, resumably, and the
old key can then be removed."""

import base64
import io

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from apps.environments.models import SalesforceOrg
from apps.integrations.models import Integration
from apps.integrations.vault import key_id, sealed_key_id, unseal_from
from tests.integrations.factories import sealed_integration, sealed_org

pytestmark = pytest.mark.django_db

OLD_KEY = base64.b64encode(b"o" * 32).decode()
NEW_KEY = base64.b64encode(b"n" * 32).decode()
OLD_KID, NEW_KID = key_id(b"o" * 32), key_id(b"n" * 32)


def rotate(*args) -> str:
    out = io.StringIO()
    call_command("rotate_encryption_key", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def sealed_with_old_key():
    with override_settings(SFP_ENCRYPTION_KEYS=[OLD_KEY]):
        for n in range(5):
            sealed_integration(credentials={"token": f"ghp_secret_{n}"}, is_global=True)
        for n in range(3):
            sealed_org(
                username=f"u{n}@acme.org", auth_url=f"force://id::refresh{n}@acme.my.salesforce.com"
            )


def all_kids() -> set[str]:
    kids = {sealed_key_id(i.credentials) for i in Integration.objects.all()}
    return kids | {sealed_key_id(o.auth_url) for o in SalesforceOrg.objects.all()}


def test_rotation_re_encrypts_everything_and_frees_the_old_key(sealed_with_old_key):
    with override_settings(SFP_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        output = rotate("--batch-size", "2")
    assert all_kids() == {NEW_KID}
    assert "integrations.integration.credentials: 5 of 5 need re-encryption" in output
    assert "environments.salesforceorg.auth_url: 3 of 3 need re-encryption" in output
    assert f"Verified 8 secret(s): all sealed with {NEW_KID}." in output
    assert f"No secret needs the older key(s) ['{OLD_KID}']: they can be removed." in output

    with override_settings(SFP_ENCRYPTION_KEYS=[NEW_KEY]):  # the old key is gone
        tokens = sorted(
            unseal_from(i, "credentials").value["token"] for i in Integration.objects.all()
        )
        assert tokens == [f"ghp_secret_{n}" for n in range(5)]
        urls = sorted(unseal_from(o, "auth_url").value for o in SalesforceOrg.objects.all())
        assert urls[0] == "force://id::refresh0@acme.my.salesforce.com"
        assert "Verified 8 secret(s)" in rotate("--verify-only")


def test_an_interrupted_rotation_resumes(sealed_with_old_key):
    with override_settings(SFP_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        first = rotate("--max-rows", "3")
        assert "Stopped after 3 secret(s): run again to resume." in first
        assert all_kids() == {NEW_KID, OLD_KID}
        with pytest.raises(CommandError, match="5 of 8 secret"):
            rotate("--verify-only")
        second = rotate()
        assert "3 of 5 need re-encryption" not in second
        assert "integrations.integration.credentials: 2 of 5 need re-encryption" in second
        assert "Verified 8 secret(s)" in second
    assert all_kids() == {NEW_KID}


def test_verification_reports_a_secret_that_does_not_open(sealed_with_old_key):
    with override_settings(SFP_ENCRYPTION_KEYS=[NEW_KEY]), pytest.raises(CommandError) as failed:
        rotate("--verify-only")
    assert "not in SFP_ENCRYPTION_KEYS" in str(failed.value)
    assert "ghp_secret" not in str(failed.value)
