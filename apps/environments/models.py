"""Environment records: the Salesforce org registry (orgs registered once, shared by every
repository), with environments and their locks arriving with the environments capability."""

from django.db import models
from django.db.models import Q

from apps.integrations.vault import SealedField


class SalesforceOrg(models.Model):
    """A registered org: identity derived from a proven auth URL, the auth URL itself sealed."""

    username = models.CharField(max_length=254, unique=True)
    org_id = models.CharField(max_length=18)
    user_id = models.CharField(max_length=18, blank=True)
    instance_url = models.URLField()
    instance_name = models.CharField(max_length=32, blank=True)
    organization_type = models.CharField(max_length=64, blank=True)
    is_sandbox = models.BooleanField(default=False)
    is_devhub = models.BooleanField(default=False)
    is_default = models.BooleanField(default=False)
    metadata = models.JSONField(default=dict, blank=True)
    auth_url = SealedField(help_text="The SFDX auth URL, sealed by the vault; never shown.")
    registered_by = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["username"]
        verbose_name = "Salesforce org"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True, is_devhub=True),
                name="environments_one_default_devhub",
            ),
            models.CheckConstraint(
                condition=Q(is_default=False) | Q(is_devhub=True),
                name="environments_default_org_is_devhub",
            ),
        ]

    def __str__(self) -> str:
        return self.username
