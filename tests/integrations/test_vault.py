"""The vault: AES-256-GCM envelope encryption with a key list, bound to a purpose."""

import base64

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from apps.integrations.vault import (
    Revealed,
    VaultError,
    current_key,
    key_id,
    seal,
    sealed_key_id,
    unseal,
)

OLD_KEY = base64.b64encode(b"o" * 32).decode()
NEW_KEY = base64.b64encode(b"n" * 32).decode()
SECRET = {"token": "ghp_planted_secret_value_123"}


def test_round_trip_records_the_key_and_hides_the_value():
    with override_settings(SFP_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        sealed = seal(SECRET, purpose="integrations.integration.credentials")
        assert sealed.startswith(f"sfpv1.{key_id(b'n' * 32)}.")
        assert sealed_key_id(sealed) == current_key().kid
        assert "ghp_planted" not in sealed
        revealed = unseal(sealed, purpose="integrations.integration.credentials")
    assert revealed.value == SECRET
    assert "ghp_planted" not in repr(revealed)
    assert "ghp_planted" not in str(revealed)
    assert isinstance(revealed, Revealed)


def test_every_seal_is_different():
    assert seal(SECRET, purpose="p") != seal(SECRET, purpose="p")


def test_old_keys_still_decrypt_and_the_first_key_encrypts():
    with override_settings(SFP_ENCRYPTION_KEYS=[OLD_KEY]):
        sealed_old = seal(SECRET, purpose="p")
    with override_settings(SFP_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        assert unseal(sealed_old, purpose="p").value == SECRET
        assert sealed_key_id(seal(SECRET, purpose="p")) == key_id(b"n" * 32)
    with override_settings(SFP_ENCRYPTION_KEYS=[NEW_KEY]):
        with pytest.raises(VaultError, match="not in SFP_ENCRYPTION_KEYS"):
            unseal(sealed_old, purpose="p")


def test_a_ciphertext_moved_to_another_column_does_not_open():
    sealed = seal(SECRET, purpose="environments.salesforceorg.auth_url")
    with pytest.raises(VaultError, match="another purpose"):
        unseal(sealed, purpose="integrations.integration.credentials")


def test_tampering_is_detected():
    sealed = seal(SECRET, purpose="p")
    head, tail = sealed.rsplit(".", 1)
    flipped = tail[:-3] + ("A" if tail[-3] != "A" else "B") + tail[-2:]
    with pytest.raises(VaultError):
        unseal(f"{head}.{flipped}", purpose="p")
    with pytest.raises(VaultError, match="not a sealed value"):
        unseal("plaintext", purpose="p")


@pytest.mark.parametrize("bad", ["not-base64!", base64.b64encode(b"short").decode()])
def test_a_bad_key_is_refused_naming_its_position_not_its_value(bad):
    with override_settings(SFP_ENCRYPTION_KEYS=[NEW_KEY, bad]):
        with pytest.raises(ImproperlyConfigured) as refused:
            seal(SECRET, purpose="p")
    assert "entry 2" in str(refused.value)
    assert bad not in str(refused.value)


def test_no_key_at_all_is_refused():
    with override_settings(SFP_ENCRYPTION_KEYS=[]), pytest.raises(ImproperlyConfigured):
        seal(SECRET, purpose="p")
