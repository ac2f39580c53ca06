"""Inbound webhook records: each project's signing secret (sealed by the vault) and every
delivery received, with what became of it.

A delivery row is written in the same transaction as the work it starts (a task execution row),
so a 202 means both exist. `(provider, delivery_id)` is unique: a redelivery of the same event
finds the row and is answered as a duplicate, counted on the original, and starts nothing.
"""

from django.db import models

from apps.integrations.vault import SealedField


class WebhookSecret(models.Model):
    """The shared secret a project's webhooks are signed with (GitHub HMAC key, Azure DevOps
    basic-auth password). Generated server-side; only its sealed form is stored."""

    project = models.OneToOneField(
        "projects.Project", on_delete=models.CASCADE, related_name="webhook_secret"
    )
    secret = SealedField(help_text="Sealed by the vault; never shown.")
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"webhook secret of {self.project_id}"


class DeliveryProvider(models.TextChoices):
    GITHUB = "github", "GitHub"
    AZURE_DEVOPS = "azure-devops", "Azure DevOps"


class DeliveryStatus(models.TextChoices):
    ACCEPTED = "accepted"  # stored; its routed work (if any) enqueued with it
    REJECTED = "rejected"  # authenticated but unusable (see `reason`); stored, nothing started


class WebhookDelivery(models.Model):
    provider = models.CharField(max_length=16, choices=DeliveryProvider.choices)
    delivery_id = models.CharField(max_length=100, help_text="X-GitHub-Delivery / notification id")
    event = models.CharField(max_length=100, help_text="X-GitHub-Event or the service hook type")
    action = models.CharField(max_length=64, blank=True, help_text="payload action, if any")
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices)
    reason = models.CharField(max_length=255, blank=True, help_text="what was done, or why not")
    branch = models.CharField(max_length=255, blank=True)
    commit_sha = models.CharField(max_length=64, blank=True)
    route = models.CharField(max_length=32, blank=True, help_text="the routing action matched")
    task_operation_id = models.CharField(max_length=32, blank=True)
    payload = models.JSONField()
    duplicates = models.PositiveIntegerField(default=0, help_text="redeliveries answered as such")
    last_duplicate_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "delivery_id"], name="builds_delivery_once_per_provider"
            )
        ]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.provider} {self.event} {self.delivery_id}"
