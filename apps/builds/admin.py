"""Admin screens for webhook deliveries (read-only: they are records) and webhook secrets
(metadata only: the secret itself is never shown)."""

from django.contrib import admin

from apps.builds.models import WebhookDelivery, WebhookSecret


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "received_at",
        "provider",
        "event",
        "action",
        "project",
        "status",
        "route",
        "reason",
        "duplicates",
    )
    list_filter = ("provider", "status", "event")
    search_fields = ("delivery_id", "project__identifier", "commit_sha")
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookSecret)
class WebhookSecretAdmin(admin.ModelAdmin):
    list_display = ("project", "created_at", "rotated_at")
    fields = ("project", "created_at", "rotated_at")
    readonly_fields = ("project", "created_at", "rotated_at")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
