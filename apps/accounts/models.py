"""Identity and access records: users, teams, memberships, tokens and the audit log.

The instance is one organisation. A user's organisation role is the highest role of their team
memberships (`owner` > `member`); `application` is the role of an application token. Roles are
read from these rows on every request, so a change applies from the next request.
"""

import uuid

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    MEMBER = "member", "Member"
    APPLICATION = "application", "Application"


class TeamRole(models.TextChoices):
    OWNER = "owner", "Owner"
    MEMBER = "member", "Member"


class UserManager(BaseUserManager):
    """Creates users keyed by a normalised (lower-case) email address."""

    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields):
        if not email:
            raise ValueError("A user needs an email address")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def get_by_natural_key(self, email: str):
        return self.get(email__iexact=email)


class User(AbstractBaseUser):
    """A person known by email address. Console access and permissions follow the owner role."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField("email address", max_length=254, unique=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.email

    def get_short_name(self) -> str:
        return self.first_name or self.email

    @property
    def is_owner(self) -> bool:
        """Owner of at least one team, read fresh from the database."""
        return self.is_active and self.memberships.filter(role=TeamRole.OWNER).exists()

    # The Django admin asks these; owners are the operators, with every permission.
    @property
    def is_staff(self) -> bool:
        return self.is_owner

    @property
    def is_superuser(self) -> bool:
        return self.is_owner

    def has_perm(self, perm: str, obj=None) -> bool:
        return self.is_owner

    def has_perms(self, perm_list, obj=None) -> bool:
        return self.is_owner

    def has_module_perms(self, app_label: str) -> bool:
        return self.is_owner


class Team(models.Model):
    """A group of users (Supabase `accounts`); the creator becomes its first owner."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    """A user's role in a team (Supabase `accounts_memberships`)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=TeamRole.choices, default=TeamRole.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["team__slug", "user__email"]
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="accounts_membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


def _token_id() -> str:
    import secrets

    return "tok_" + secrets.token_hex(8)


class ApplicationToken(models.Model):
    """A CI/CD credential with the `application` role, capped by its creator's current role.

    Only an HMAC of the token and its last four characters are stored; the token itself is shown
    once, when it is created.
    """

    id = models.CharField(primary_key=True, max_length=24, default=_token_id, editable=False)
    name = models.CharField(max_length=120)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    last4 = models.CharField(max_length=4, editable=False)
    created_by = models.ForeignKey(User, on_delete=models.CASCADE, related_name="app_tokens")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.id}, …{self.last4})"

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "active"


class RefreshToken(models.Model):
    """One refresh token of a login session. Using it rotates it; reusing a rotated one revokes
    the whole family (every token descended from the same login)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="refresh_tokens")
    family = models.UUIDField(db_index=True)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    rotated_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"session {self.family} of {self.user_id}"


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("Audit events are append-only")

    def delete(self):
        raise PermissionError("Audit events are append-only")


class AuditEvent(models.Model):
    """One append-only audit row: a request, or a domain event with before/after values.

    Actors are denormalised (id, email, role) rather than foreign keys, so deleting a user never
    has to touch the log. On PostgreSQL a trigger refuses UPDATE and DELETE as well.
    """

    REQUEST = "request"

    id = models.BigAutoField(primary_key=True)
    occurred_at = models.DateTimeField(default=timezone.now)  # indexed by audit_keyset
    action = models.CharField(max_length=64)
    actor_user_id = models.UUIDField(null=True, blank=True)
    actor_email = models.CharField(max_length=254, blank=True)
    actor_token_id = models.CharField(max_length=24, blank=True)
    actor_role = models.CharField(max_length=16, blank=True)
    method = models.CharField(max_length=8, blank=True)
    path = models.CharField(max_length=512, blank=True)
    operation = models.CharField(max_length=128, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=254, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            # The list, newest first, paged by (occurred_at, id) < cursor.
            models.Index(fields=["occurred_at", "id"], name="audit_keyset"),
            models.Index(fields=["action", "target_id", "occurred_at"], name="audit_action_target"),
            models.Index(fields=["action", "client_ip", "occurred_at"], name="audit_action_ip"),
            models.Index(fields=["actor_email", "occurred_at"], name="audit_actor"),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.action} {self.actor_email or '-'}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("Audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events are append-only")


from apps.accounts.sso.models import (  # noqa: E402,F401 - registered with the accounts app
    SamlAssertionSeen,
    SamlIdentityProvider,
    SamlRequestSent,
    SamlSigningKey,
    SsoDomain,
)
