"""Console screens for the org registry: identities and flags, the auth URL never shown."""

from django.contrib import admin, messages

from apps.accounts.principal import principal_for_user
from apps.environments import services
from apps.environments.models import SalesforceOrg


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
