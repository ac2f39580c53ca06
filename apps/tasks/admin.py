"""Console screens for task executions: filters, status, the log, and actions to cancel,
approve or reject a pipeline gate, and retry a failed pipeline step."""

from django.contrib import admin, messages
from django.utils.html import format_html_join

from apps.accounts.principal import principal_for_user
from apps.core.exceptions import ServiceError
from apps.tasks import services
from apps.tasks.models import (
    FINISHED_STATUSES,
    DispatchState,
    TaskAttempt,
    TaskExecution,
    TaskLogLine,
)
from apps.tasks.pipelines import GATE_TYPE

LOG_LINES_SHOWN = 500


class TaskAttemptInline(admin.TabularInline):
    """Each attempt of the execution with its own worker, times, exit code and error."""

    model = TaskAttempt
    extra = 0
    can_delete = False
    fields = ("number", "status", "worker_id", "started_at", "finished_at", "exit_code", "error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(TaskExecution)
class TaskExecutionAdmin(admin.ModelAdmin):
    inlines = [TaskAttemptInline]
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
    actions = ["cancel_executions", "approve_gates", "reject_gates", "retry_failed_steps"]
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
        """The API's cancel, audited, releasing locks and telling the engine, per task."""
        actor = principal_for_user(request.user)
        cancelled = 0
        for execution in queryset.exclude(status__in=FINISHED_STATUSES):
            try:
                services.task_cancel(actor=actor, execution=execution, request=request)
                cancelled += 1
            except ServiceError as refused:
                self.message_user(request, refused.message, messages.ERROR)
        self.message_user(
            request, f"Cancellation requested for {cancelled} task(s).", messages.SUCCESS
        )


def _decide(modeladmin, request, queryset, approved: bool) -> None:
    actor = principal_for_user(request.user)
    decided = 0
    for gate in queryset.filter(type=GATE_TYPE, status="pending").select_related("parent"):
        try:
            services.pipeline_decide(
                actor=actor, parent=gate.parent, step=gate.step, approved=approved, request=request
            )
            decided += 1
        except ServiceError as refused:
            modeladmin.message_user(request, refused.message, messages.ERROR)
    verb = "Approved" if approved else "Rejected"
    modeladmin.message_user(request, f"{verb} {decided} gate(s).", messages.SUCCESS)


@admin.action(description="Approve selected gates")
def approve_gates(modeladmin, request, queryset):
    _decide(modeladmin, request, queryset, approved=True)


@admin.action(description="Reject selected gates")
def reject_gates(modeladmin, request, queryset):
    _decide(modeladmin, request, queryset, approved=False)


@admin.action(description="Retry selected failed pipeline steps")
def retry_failed_steps(modeladmin, request, queryset):
    actor = principal_for_user(request.user)
    retried = 0
    for child in queryset.filter(parent__isnull=False).select_related("parent"):
        try:
            services.pipeline_retry_step(
                actor=actor, parent=child.parent, step=child.step, request=request
            )
            retried += 1
        except ServiceError as refused:
            modeladmin.message_user(request, refused.message, messages.ERROR)
    modeladmin.message_user(request, f"Retrying {retried} step(s).", messages.SUCCESS)


TaskExecutionAdmin.approve_gates = approve_gates
TaskExecutionAdmin.reject_gates = reject_gates
TaskExecutionAdmin.retry_failed_steps = retry_failed_steps


@admin.register(DispatchState)
class DispatchStateAdmin(admin.ModelAdmin):
    list_display = ("id", "paused", "changed_at")
    list_editable = ("paused",)

    def has_add_permission(self, request) -> bool:
        return not DispatchState.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
