"""Console screens for integrations and credential grants: metadata only, secrets never shown.

Integrations are created and their credentials replaced through the API (which validates and
seals them); here they are listed, tested and deleted. Grants are read-only.
"""

from django.contrib import admin, messages

from apps.accounts.principal import principal_for_user
from apps.integrations import services
from apps.integrations.models import CredentialGrant, Integration


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    list_display = (
        "provider",
        "auth_type",
        "is_global",
        "credential_fields",
        "created_by",
        "updated_at",
    )
    list_filter = ("provider", "auth_type", "is_global")
    fields = (
        "id",
        "provider",
        "auth_type",
        "is_global",
        "credential_fields",
        "masked_credentials",
        "config",
        "created_by",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    actions = ["test_connection"]

    @admin.display(description="credentials")
    def masked_credentials(self, obj) -> str:
        return ", ".join(f"{name}: ••••••" for name in obj.credential_fields)

    def has_add_permission(self, request) -> bool:
        return False

    def delete_model(self, request, obj):
        services.integration_delete(
            actor=principal_for_user(request.user), integration=obj, request=request
        )

    def delete_queryset(self, request, queryset):
        for integration in queryset:
            self.delete_model(request, integration)

    @admin.action(description="Test connection")
    def test_connection(self, request, queryset):
        for integration in queryset:
            outcome = services.integration_test_connection(integration=integration)
            level = messages.SUCCESS if outcome["success"] else messages.ERROR
            self.message_user(request, f"Integration {integration}: {outcome['message']}", level)


@admin.register(CredentialGrant)
class CredentialGrantAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "operation_id",
        "grantee_token_id",
        "created_at",
        "expires_at",
        "ended_at",
        "end_reason",
        "redemptions",
    )
    list_filter = ("end_reason",)
    search_fields = ("operation_id", "grantee_token_id")

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
