"""Environment records: the Salesforce org registry (orgs registered once, shared by every
repository), the lock queue (resources, their FIFO tickets, and requests for any one of a set of
resources), and environments per repository."""

import uuid

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


class LockStatus(models.TextChoices):
    QUEUED = "queued"
    ACQUIRED = "acquired"
    RELEASED = "released"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class LockResource(models.Model):
    """One lockable thing (an environment, a build slot…); its row serialises its queue."""

    repository = models.CharField(max_length=255)
    resource = models.CharField(max_length=255)
    event_seq = models.PositiveBigIntegerField(
        default=0, help_text="The last live-event sequence number of this resource's lock."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["repository", "resource"], name="lock_resource_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.repository}:{self.resource}"


class LockRequest(models.Model):
    """A request for any one free resource of a set: it has one queued ticket per resource, and
    the first of them to acquire is its grant (the others then count for nothing)."""

    request_id = models.UUIDField(unique=True)
    repository = models.CharField(max_length=255)
    resources = models.JSONField(help_text="The canonical resources asked for, in order.")
    holder_key = models.CharField(max_length=100)
    holder_label = models.CharField(max_length=254, blank=True)
    idempotency_key = models.CharField(max_length=200, blank=True)
    lease_duration_seconds = models.PositiveIntegerField()
    reason = models.CharField(max_length=500, blank=True)
    granted_ticket = models.OneToOneField(
        "LockTicket", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["holder_key", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="lock_request_idempotency_per_caller",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.repository}:{'|'.join(self.resources)} {self.request_id}"


class LockTicket(models.Model):
    """A place in a resource's FIFO queue; the one `acquired` ticket holds the lease.

    `holder_key` is who holds it (`token:<id>`, `session:<id>`, `user:<id>` or `task:<id>`):
    only that identity, owners and application tokens may release or extend it; `holder_label`
    is only for display and is never compared."""

    resource_row = models.ForeignKey(LockResource, on_delete=models.CASCADE, related_name="tickets")
    ticket_id = models.UUIDField(unique=True)
    lock_request = models.ForeignKey(
        LockRequest, null=True, blank=True, on_delete=models.CASCADE, related_name="tickets"
    )
    status = models.CharField(max_length=16, choices=LockStatus.choices, db_index=True)
    reason = models.CharField(max_length=500, blank=True)
    lease_duration_seconds = models.PositiveIntegerField()
    lease_start = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    holder_key = models.CharField(max_length=100, blank=True)
    holder_label = models.CharField(max_length=254, blank=True)
    holder_user_id = models.CharField(max_length=64, blank=True)
    holder_token_id = models.CharField(max_length=24, blank=True)
    holder_operation_id = models.CharField(max_length=32, blank=True)
    idempotency_key = models.CharField(max_length=200, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["status", "expires_at"],
                condition=Q(status="acquired"),
                name="lock_ticket_held_expiry",
            ),
            models.Index(
                fields=["holder_operation_id"],
                condition=~Q(holder_operation_id=""),
                name="lock_ticket_by_operation",
            ),
        ]
        constraints = [
            # The database itself refuses a second holder.
            models.UniqueConstraint(
                fields=["resource_row"],
                condition=models.Q(status="acquired"),
                name="lock_one_holder_per_resource",
            ),
            # An idempotency key names one request of its caller, whatever the resource.
            models.UniqueConstraint(
                fields=["holder_key", "idempotency_key"],
                condition=~Q(idempotency_key="") & Q(lock_request__isnull=True),
                name="lock_ticket_idempotency_per_caller",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.resource_row} {self.ticket_id} ({self.status})"


class Category(models.TextChoices):
    DEV = "dev"
    TEST = "test"
    SNAPSHOT = "snapshot"
    RELEASE = "release"


class Environment(models.Model):
    """A repository's environment: an org it deploys to, with a branch, tags and metadata.

    Deleting an environment never touches its org. Its lock is the lock-queue resource
    `(repository identifier, "env:<name>")`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="environments"
    )
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=16, choices=Category.choices)
    org = models.ForeignKey(
        SalesforceOrg, null=True, blank=True, on_delete=models.SET_NULL, related_name="environments"
    )
    devhub_username = models.CharField(max_length=254, blank=True)
    branch = models.CharField(max_length=255, blank=True)
    tags = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False)
    orchestration_order = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project__identifier", "orchestration_order", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="environment_name_per_repo"),
            models.UniqueConstraint(
                fields=["project", "category"],
                condition=Q(is_default=True),
                name="environment_one_default_per_category",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project_id}:{self.name}"

    @property
    def lock_resource(self) -> str:
        return f"env:{self.name}"
