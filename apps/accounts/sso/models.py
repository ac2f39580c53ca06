"""SSO records: identity providers and the domains they own, the SP's signing keys (private key
sealed in the vault), AuthnRequests sent (for InResponseTo) and assertion ids seen (replay)."""

import uuid

from django.db import models

from apps.integrations.vault import SealedField


class SamlIdentityProvider(models.Model):
    """An identity provider registered through `POST /sfp/api/sso/providers`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    entity_id = models.CharField(max_length=1024, unique=True)
    sso_url = models.URLField(max_length=2048)
    signing_certificates = models.JSONField(default=list)
    metadata_url = models.URLField(max_length=2048, blank=True)
    metadata_xml = models.TextField()
    # Just-in-time provisioning: unknown users join this team as members; None refuses them.
    provision_team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        "accounts.User", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    metadata_refreshed_at = models.DateTimeField()
    metadata_refresh_error = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.entity_id


class SsoDomain(models.Model):
    """An email domain; it belongs to exactly one provider."""

    domain = models.CharField(max_length=253, unique=True)
    provider = models.ForeignKey(
        SamlIdentityProvider, on_delete=models.CASCADE, related_name="domains"
    )
    # When set, password login is refused for users of this domain (break-glass owners excepted).
    sso_required = models.BooleanField(default=False)

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain


class SamlSigningKey(models.Model):
    """The SP's key pair. The newest active key signs; every unretired key is published."""

    private_key = SealedField()
    certificate = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"SAML signing key {self.pk} ({'retired' if self.retired_at else 'published'})"


class SamlRequestSent(models.Model):
    """An AuthnRequest this SP sent; a response may name it in InResponseTo exactly once."""

    request_id = models.CharField(max_length=128, unique=True)
    provider = models.ForeignKey(SamlIdentityProvider, on_delete=models.CASCADE, related_name="+")
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.request_id


class SamlAssertionSeen(models.Model):
    """An accepted assertion id, kept until the assertion itself expires, so it cannot replay."""

    assertion_id = models.CharField(max_length=256, unique=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.assertion_id
