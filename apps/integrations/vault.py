"""The credential vault: application-level envelope encryption with AES-256-GCM.

Each value gets its own random 256-bit data key; the value is encrypted with it, and the data key
is wrapped by the current key-encryption key from `SFP_ENCRYPTION_KEYS` (the first key encrypts,
every key decrypts). A sealed value is one ASCII string:

    sfpv1.<key id>.<wrapped data key>.<ciphertext>      (urlsafe base64, nonces included)

The key id is derived from the key itself, so a ciphertext always says which key sealed it. The
`purpose` (model, field) is bound as associated data: a ciphertext moved to another column will
not decrypt. Models store sealed strings in a `SealedField`; plaintext exists only in memory, in
a `Revealed` wrapper whose repr never shows it.
"""

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

FORMAT_VERSION = "sfpv1"
_NONCE_BYTES = 12


class VaultError(Exception):
    """A sealed value cannot be opened (unknown key, tampered, wrong purpose)."""


@dataclass(frozen=True)
class VaultKey:
    kid: str
    material: bytes

    def __repr__(self) -> str:
        return f"VaultKey(kid={self.kid!r})"


class Revealed:
    """A decrypted value held in memory. Its repr and str never show the value."""

    __slots__ = ("_value",)

    def __init__(self, value: Any):
        self._value = value

    @property
    def value(self) -> Any:
        return self._value

    def __repr__(self) -> str:
        return "<Revealed secret>"

    __str__ = __repr__


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_id(material: bytes) -> str:
    return hashlib.sha256(b"sfp-vault-kid:" + material).hexdigest()[:12]


@lru_cache(maxsize=8)
def _parse_keys(configured: tuple[str, ...]) -> tuple[VaultKey, ...]:
    keys = []
    for position, text in enumerate(configured, start=1):
        try:
            material = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            material = b""
        if len(material) != 32:
            raise ImproperlyConfigured(
                f"SFP_ENCRYPTION_KEYS entry {position} is not 32 bytes of base64 "
                "(make one with: openssl rand -base64 32)"
            )
        keys.append(VaultKey(kid=key_id(material), material=material))
    return tuple(keys)


def keyring() -> tuple[VaultKey, ...]:
    keys = _parse_keys(tuple(settings.SFP_ENCRYPTION_KEYS))
    if not keys:
        raise ImproperlyConfigured("SFP_ENCRYPTION_KEYS is empty: the vault has no key")
    return keys


def current_key() -> VaultKey:
    return keyring()[0]


def seal(value: Any, *, purpose: str) -> str:
    """Encrypt a JSON-serialisable value for `purpose` with the current key."""
    kek = current_key()
    data_key = AESGCM.generate_key(bit_length=256)
    wrap_nonce, data_nonce = os.urandom(_NONCE_BYTES), os.urandom(_NONCE_BYTES)
    wrapped = AESGCM(kek.material).encrypt(wrap_nonce, data_key, f"{kek.kid}|{purpose}".encode())
    plaintext = json.dumps(value, separators=(",", ":")).encode()
    ciphertext = AESGCM(data_key).encrypt(data_nonce, plaintext, purpose.encode())
    return ".".join(
        (FORMAT_VERSION, kek.kid, _b64(wrap_nonce + wrapped), _b64(data_nonce + ciphertext))
    )


def sealed_key_id(sealed: str) -> str:
    parts = sealed.split(".")
    if len(parts) != 4 or parts[0] != FORMAT_VERSION:
        raise VaultError("not a sealed value")
    return parts[1]


def unseal(sealed: str, *, purpose: str) -> Revealed:
    """Decrypt a sealed value. Callers that hand the result to someone must audit it."""
    kid = sealed_key_id(sealed)
    kek = next((key for key in keyring() if key.kid == kid), None)
    if kek is None:
        raise VaultError(f"sealed with key {kid}, which is not in SFP_ENCRYPTION_KEYS")
    _, _, wrapped_text, data_text = sealed.split(".")
    try:
        wrapped, data = _unb64(wrapped_text), _unb64(data_text)
        data_key = AESGCM(kek.material).decrypt(
            wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:], f"{kid}|{purpose}".encode()
        )
        plaintext = AESGCM(data_key).decrypt(
            data[:_NONCE_BYTES], data[_NONCE_BYTES:], purpose.encode()
        )
    except (InvalidTag, ValueError, binascii.Error):
        raise VaultError(
            "sealed value does not open: tampered, or sealed for another purpose"
        ) from None
    return Revealed(json.loads(plaintext))


# --- model field and registry ---------------------------------------------------------------


@dataclass(frozen=True)
class SealedColumn:
    model: type[models.Model]
    field_name: str

    @property
    def purpose(self) -> str:
        return purpose_for(self.model, self.field_name)


SEALED_COLUMNS: list[SealedColumn] = []


def purpose_for(model: type[models.Model], field_name: str) -> str:
    return f"{model._meta.label_lower}.{field_name}"


class SealedField(models.TextField):
    """A column holding a sealed value (never plaintext). Every such column registers itself,
    so key rotation finds all of them."""

    description = "Sealed (encrypted) value"

    def contribute_to_class(self, cls, name, private_only=False):
        super().contribute_to_class(cls, name, private_only)
        # Migrations build historical copies of models (module "__fake__"); only real ones count.
        if cls._meta.abstract or cls._meta.proxy or cls.__module__ == "__fake__":
            return
        column = SealedColumn(model=cls, field_name=name)
        if all(purpose_for(c.model, c.field_name) != column.purpose for c in SEALED_COLUMNS):
            SEALED_COLUMNS.append(column)


def seal_for(model: type[models.Model], field_name: str, value: Any) -> str:
    return seal(value, purpose=purpose_for(model, field_name))


def unseal_from(instance: models.Model, field_name: str) -> Revealed:
    return unseal(getattr(instance, field_name), purpose=purpose_for(type(instance), field_name))
