"""Console screens for the org registry (the auth URL never shown), environments, and the lock
board with a force-release action."""

from django.contrib import admin, messages

from apps.accounts.principal import principal_for_user
from apps.environments.models import Environment, LockStatus, LockTicket, SalesforceOrg
from apps.environments.services import locks
from apps.environments.services import orgs as services


@admin.register(SalesforceOrg)
class SalesforceOrgAdmin(admin.ModelAdmin):
    list_display = (
        "username",
        "org_id",
        "instance_url",
        "organization_type",
        "is_devhub",
        "is_default",
        "last_verified_at",
    )
    list_filter = ("is_devhub", "is_default", "is_sandbox", "organization_type")
    search_fields = ("username", "org_id", "instance_url")
    fields = (
        "username",
        "org_id",
        "user_id",
        "instance_url",
        "instance_name",
        "organization_type",
        "is_sandbox",
        "is_devhub",
        "is_default",
        "metadata",
        "masked_auth_url",
        "registered_by",
        "created_at",
        "updated_at",
        "last_verified_at",
    )
    readonly_fields = fields
    actions = ["test_connection"]

    @admin.display(description="auth URL")
    def masked_auth_url(self, obj) -> str:
        return "force://••••••@" + obj.instance_url.split("://", 1)[-1]

    def has_add_permission(self, request) -> bool:
        return False

    def delete_model(self, request, obj):
        services.org_delete(
            actor=principal_for_user(request.user), username=obj.username, request=request
        )

    def delete_queryset(self, request, queryset):
        for org in queryset:
            self.delete_model(request, org)

    @admin.action(description="Test connection")
    def test_connection(self, request, queryset):
        for org in queryset:
            outcome = services.org_test_connection(org=org)
            level = messages.SUCCESS if outcome["success"] else messages.ERROR
            self.message_user(request, f"Org {org.username}: {outcome['message']}", level)


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "project",
        "category",
        "org",
        "branch",
        "is_active",
        "is_default",
        "orchestration_order",
    )
    list_filter = ("category", "is_active", "is_default", "project")
    search_fields = ("name", "project__identifier", "org__username", "branch")
    autocomplete_fields = ("org",)
    readonly_fields = ("created_at", "updated_at")


@admin.register(LockTicket)
class LockBoardAdmin(admin.ModelAdmin):
    """The lock board: who holds what, who waits, when leases expire; owners can force-release."""

    list_display = (
        "resource_row",
        "status",
        "holder_label",
        "reason",
        "lease_start",
        "expires_at",
        "created_at",
        "released_by",
    )
    list_filter = ("status", "resource_row__repository")
    search_fields = (
        "resource_row__repository",
        "resource_row__resource",
        "holder_label",
        "ticket_id",
    )
    ordering = ("resource_row", "id")
    actions = ["force_release"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("resource_row")

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Force-release selected locks (the next in line acquires)")
    def force_release(self, request, queryset):
        actor = principal_for_user(request.user)
        released = 0
        pending = queryset.select_related("resource_row").filter(
            status__in=[LockStatus.ACQUIRED, LockStatus.QUEUED]
        )
        for ticket in pending:
            locks.lock_force_release(actor=actor, ticket=ticket, request=request)
            released += 1
        self.message_user(request, f"Released {released} lock(s).", messages.SUCCESS)
