"""Console screens for task executions: filters, status, the log, and a cancel action."""

from django.contrib import admin, messages
from django.utils.html import format_html_join

from apps.tasks import lifecycle
from apps.tasks.models import FINISHED_STATUSES, DispatchState, TaskExecution, TaskLogLine

LOG_LINES_SHOWN = 500


@admin.register(TaskExecution)
class TaskExecutionAdmin(admin.ModelAdmin):
    list_display = (
        "operation_id",
        "type",
        "status",
        "progress",
        "attempts",
        "pool",
        "priority",
        "triggered_by_label",
        "created_at",
        "finished_at",
    )
    list_filter = ("status", "type", "pool", "priority", "triggered_by_kind")
    search_fields = ("operation_id", "type", "triggered_by_label", "engine_run_id")
    date_hierarchy = "created_at"
    actions = ["cancel_executions"]
    readonly_fields = ("log",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "operation_id",
                    "type",
                    "status",
                    "progress",
                    "current_step",
                    "error",
                    "result",
                )
            },
        ),
        ("Input", {"fields": ("data",)}),
        (
            "Policy",
            {
                "fields": (
                    "pool",
                    "priority",
                    "attempts",
                    "max_attempts",
                    "timeout_seconds",
                    "backoff_seconds",
                    "schedule_type",
                    "scheduled_for",
                )
            },
        ),
        (
            "Origin",
            {
                "fields": (
                    "triggered_by_kind",
                    "triggered_by_label",
                    "parent",
                    "engine_run_id",
                    "worker_id",
                )
            },
        ),
        (
            "Times",
            {
                "fields": (
                    "created_at",
                    "started_at",
                    "finished_at",
                    "available_at",
                    "lease_expires_at",
                )
            },
        ),
        ("Log", {"fields": ("log",)}),
    )

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields] + ["log"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="log (last lines)")
    def log(self, obj):
        lines = list(TaskLogLine.objects.filter(execution=obj).order_by("-seq")[:LOG_LINES_SHOWN])[
            ::-1
        ]
        if not lines:
            return "—"
        return format_html_join(
            "", '<div style="font-family:monospace;white-space:pre-wrap">{} {} {}</div>',
            ((line.seq, line.stream, line.message) for line in lines),
        )  # fmt: skip

    @admin.action(description="Cancel selected tasks")
    def cancel_executions(self, request, queryset):
        cancelled = 0
        for execution in queryset.exclude(status__in=FINISHED_STATUSES):
            lifecycle.cancel(execution.operation_id)
            cancelled += 1
        self.message_user(
            request, f"Cancellation requested for {cancelled} task(s).", messages.SUCCESS
        )


@admin.register(DispatchState)
class DispatchStateAdmin(admin.ModelAdmin):
    list_display = ("id", "paused", "changed_at")
    list_editable = ("paused",)

    def has_add_permission(self, request) -> bool:
        return not DispatchState.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
