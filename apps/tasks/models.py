"""Task executions, the domain record of every background operation, and their log lines.

A `TaskExecution` exists independently of the backend that runs it. The database backend also
uses its queue columns (`available_at`, `lease_expires_at`, `worker_id`) to hand work to workers;
status changes go through `apps.tasks.lifecycle` only.
"""

import uuid

from django.db import models


def new_operation_id() -> str:
    return uuid.uuid4().hex


class TaskStatus(models.TextChoices):
    PENDING = "pending"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED_STATUSES = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)


class ScheduleType(models.TextChoices):
    IMMEDIATE = "immediate"
    SCHEDULED = "scheduled"
    RECURRING = "recurring"


class Pool(models.TextChoices):
    STANDARD = "standard"
    LONG_RUNNING = "long-running"


class Priority(models.IntegerChoices):
    """Stored as the integer the claim orders by (django.tasks' scale, -100..100, higher runs
    first); the API accepts and answers the published names (the labels)."""

    LOW = 0, "low"
    MEDIUM = 10, "medium"
    HIGH = 20, "high"
    CRITICAL = 30, "critical"


# The published names and their stored values: {"low": 0, "medium": 10, …}.
PRIORITY_VALUES = {priority.label: priority.value for priority in Priority}
PRIORITY_NAMES = {value: name for name, value in PRIORITY_VALUES.items()}


class TriggerKind(models.TextChoices):
    USER = "user"
    TOKEN = "token"  # noqa: S105 - an application token triggered it, not a secret
    WEBHOOK = "webhook"
    SCHEDULE = "schedule"


class TaskExecution(models.Model):
    operation_id = models.CharField(
        max_length=32, primary_key=True, default=new_operation_id, editable=False
    )
    type = models.CharField(max_length=64, db_index=True)
    data = models.JSONField(default=dict)
    status = models.CharField(
        max_length=16, choices=TaskStatus.choices, default=TaskStatus.PENDING, db_index=True
    )
    progress = models.PositiveSmallIntegerField(default=0)
    current_step = models.CharField(max_length=255, blank=True)
    error = models.JSONField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=1)
    pool = models.CharField(max_length=16, choices=Pool.choices, default=Pool.STANDARD)
    priority = models.SmallIntegerField(choices=Priority.choices, default=Priority.LOW)
    timeout_seconds = models.PositiveIntegerField(default=3600)
    backoff_seconds = models.FloatField(default=5.0)
    backoff_max_seconds = models.FloatField(default=300.0)
    schedule_type = models.CharField(
        max_length=16, choices=ScheduleType.choices, default=ScheduleType.IMMEDIATE
    )
    scheduled_for = models.DateTimeField(null=True, blank=True)
    recurrence = models.JSONField(null=True, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    runs_started = models.PositiveIntegerField(default=0)
    recurring_origin = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="recurring_instances",
        help_text="The recurring definition this run was started from.",
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    step = models.CharField(
        max_length=128, blank=True, help_text="The pipeline step this child execution runs."
    )
    engine_run_id = models.CharField(max_length=64, blank=True)
    task_path = models.CharField(
        max_length=255, help_text="The django.tasks function that runs it."
    )
    triggered_by_kind = models.CharField(max_length=16, choices=TriggerKind.choices)
    triggered_by_id = models.CharField(max_length=64, blank=True)
    triggered_by_label = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)  # indexed by tasks_list_keyset
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Database-backend queue state.
    available_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    worker_id = models.CharField(max_length=128, blank=True)
    cancel_requested = models.BooleanField(default=False)
    event_seq = models.PositiveBigIntegerField(
        default=0,
        help_text="The last live-event sequence number of this execution (log lines share it).",
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "pool", "available_at"], name="tasks_ready_queue"),
            # The claim: the most urgent ready execution of a pool, oldest first among equals.
            models.Index(
                fields=["pool", "-priority", "available_at"],
                condition=models.Q(status="pending", cancel_requested=False),
                name="tasks_claim_order",
            ),
            # The list, newest first, paged by (created_at, operation_id) < cursor.
            models.Index(fields=["created_at", "operation_id"], name="tasks_list_keyset"),
            models.Index(fields=["status", "created_at", "operation_id"], name="tasks_list_status"),
            models.Index(fields=["status", "lease_expires_at"], name="tasks_leases"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.operation_id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES


class TaskAttempt(models.Model):
    """One attempt of an execution: who ran it, when, and how it ended. A retry adds a row, so
    the error of an earlier attempt is kept. Written by `apps.tasks.lifecycle` only."""

    execution = models.ForeignKey(
        TaskExecution, on_delete=models.CASCADE, related_name="attempt_rows"
    )
    number = models.PositiveIntegerField(help_text="1 for the first attempt.")
    worker_id = models.CharField(max_length=128, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    # "" while it runs; then completed, failed or cancelled (a failed attempt may be retried).
    status = models.CharField(max_length=16, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["execution", "number"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "number"], name="tasks_attempt_number"),
        ]

    def __str__(self) -> str:
        return f"{self.execution_id} attempt {self.number}"


class TaskLogLine(models.Model):
    """One line of a task's output, in order. `seq` is the execution's live-event sequence number
    at which the line was published, so lines and status/progress events share one order."""

    execution = models.ForeignKey(TaskExecution, on_delete=models.CASCADE, related_name="log_lines")
    seq = models.PositiveIntegerField()
    logged_at = models.DateTimeField()
    stream = models.CharField(max_length=8, default="stdout")
    message = models.TextField()

    class Meta:
        ordering = ["execution", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "seq"], name="tasks_log_line_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.execution_id}#{self.seq}"


class DispatchState(models.Model):
    """One row: whether workers may claim new work (`manage.py drain` pauses it)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    paused = models.BooleanField(default=False)
    changed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return "paused" if self.paused else "dispatching"

    @classmethod
    def is_paused(cls) -> bool:
        return cls.objects.filter(pk=1, paused=True).exists()

    @classmethod
    def set_paused(cls, paused: bool) -> None:
        cls.objects.update_or_create(pk=1, defaults={"paused": paused})


class WorkerHeartbeat(models.Model):
    """One row per worker process, rewritten every few seconds by the worker itself: its slots
    (how many alive, how often restarted), what it is running and what it cannot reach. Health
    and `/metrics` read it; a row whose `seen_at` is old belongs to a worker that is gone."""

    worker_id = models.CharField(max_length=200, primary_key=True)
    pools = models.JSONField(default=list)
    slots = models.PositiveSmallIntegerField(default=0)
    slots_alive = models.PositiveSmallIntegerField(default=0)
    slots_busy = models.PositiveSmallIntegerField(default=0)
    slot_restarts = models.PositiveIntegerField(default=0)
    # Component name → "up" / "down", as this worker last saw it (e.g. the channel layer).
    components = models.JSONField(default=dict)
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.worker_id


class HousekeepingRun(models.Model):
    """When the cluster-wide housekeeping tick last ran (one row per kind of tick)."""

    name = models.CharField(max_length=50, primary_key=True)
    last_run_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.last_run_at}"
