"""Prometheus metrics of the task workers and the queue.

Counted in the worker process (slot crashes and restarts; attempt duration by type and outcome,
retries by type; summed across processes under `PROMETHEUS_MULTIPROC_DIR`) and, for the whole
cluster, read from the database when `/metrics` is scraped: `HeartbeatCollector` (heartbeat age,
slots alive/busy/free, restarts, components each worker cannot reach), so a server with no
worker of its own still shows every worker's state, and `QueueDepthCollector` (executions per
pool and status).
"""

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

SLOT_CRASHES = Counter(
    "sfp_worker_slot_crashes_total", "Worker slots that died with an error (then restarted)."
)
SLOT_RESTARTS = Counter("sfp_worker_slot_restarts_total", "Worker slots restarted by their worker.")
ATTEMPT_DURATION = Histogram(
    "sfp_task_attempt_duration_seconds",
    "Attempts run by the workers, by task type and outcome (completed, failed, pending = retry "
    "scheduled, cancelled, fenced = another attempt owns it now).",
    labelnames=["type", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
RETRIES = Counter(
    "sfp_task_retries_total", "Attempts that ended with a retry scheduled.", labelnames=["type"]
)
# Heartbeats older than this belong to workers that are gone; they are not exported.
HEARTBEAT_FORGET_SECONDS = 3600


class HeartbeatCollector:
    """Gauges per worker from `WorkerHeartbeat`, read at scrape time (one query)."""

    def describe(self):
        return []

    def collect(self):
        from datetime import timedelta

        from django.db import DatabaseError
        from django.utils import timezone

        from apps.tasks.models import WorkerHeartbeat

        age = GaugeMetricFamily(
            "sfp_worker_heartbeat_age_seconds",
            "Seconds since each worker last wrote its heartbeat.",
            labels=["worker_id"],
        )
        slots = GaugeMetricFamily(
            "sfp_worker_slots", "Slots of each worker by state.", labels=["worker_id", "state"]
        )
        restarts = GaugeMetricFamily(
            "sfp_worker_heartbeat_slot_restarts",
            "Slot restarts each worker reported since it started.",
            labels=["worker_id"],
        )
        component = GaugeMetricFamily(
            "sfp_worker_component_up",
            "1 when the worker reaches the component (database, channelLayer), else 0.",
            labels=["worker_id", "component"],
        )
        now = timezone.now()
        try:
            rows = list(
                WorkerHeartbeat.objects.filter(
                    seen_at__gte=now - timedelta(seconds=HEARTBEAT_FORGET_SECONDS)
                )
            )
        except DatabaseError:
            rows = []
        for row in rows:
            age.add_metric([row.worker_id], max(0.0, (now - row.seen_at).total_seconds()))
            slots.add_metric([row.worker_id, "alive"], row.slots_alive)
            slots.add_metric([row.worker_id, "dead"], max(0, row.slots - row.slots_alive))
            slots.add_metric([row.worker_id, "busy"], row.slots_busy)
            slots.add_metric([row.worker_id, "free"], max(0, row.slots_alive - row.slots_busy))
            restarts.add_metric([row.worker_id], row.slot_restarts)
            for name, state in sorted(row.components.items()):
                component.add_metric([row.worker_id, name], 1 if state == "up" else 0)
        yield from (age, slots, restarts, component)


class QueueDepthCollector:
    """`sfp_task_queue_depth{pool,status}`: executions per pool and status, read at scrape
    time (one grouped query; finished ones are left out, they only grow)."""

    def describe(self):
        return []

    def collect(self):
        from django.db import DatabaseError
        from django.db.models import Count

        from apps.tasks.models import FINISHED_STATUSES, TaskExecution

        depth = GaugeMetricFamily(
            "sfp_task_queue_depth",
            "Executions not finished, per pool and status (pending includes parked and "
            "scheduled ones).",
            labels=["pool", "status"],
        )
        try:
            rows = list(
                TaskExecution.objects.exclude(status__in=FINISHED_STATUSES)
                .values("pool", "status")
                .annotate(count=Count("pk"))
                .order_by("pool", "status")
            )
        except DatabaseError:
            rows = []
        for row in rows:
            depth.add_metric([row["pool"], row["status"]], row["count"])
        yield depth


def workers_health() -> dict:
    """The workers as `/health` shows them: each recent worker's heartbeat age, slots and what
    it cannot reach; "degraded" when a worker is silent, has dead slots or lacks a component."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from apps.tasks.models import WorkerHeartbeat

    now = timezone.now()
    stale_after = max(10.0, settings.SFP_WORKER_LEASE_SECONDS)
    workers, degraded = [], False
    recent = WorkerHeartbeat.objects.filter(seen_at__gte=now - timedelta(minutes=10))
    for row in recent.order_by("worker_id")[:100]:
        age = max(0.0, (now - row.seen_at).total_seconds())
        down = sorted(name for name, state in row.components.items() if state != "up")
        silent = age > stale_after
        degraded |= silent or bool(down) or row.slots_alive < row.slots
        workers.append(
            {
                "workerId": row.worker_id,
                "pools": row.pools,
                "heartbeatAgeSeconds": round(age, 1),
                "slots": row.slots,
                "slotsAlive": row.slots_alive,
                "slotsBusy": row.slots_busy,
                "slotRestarts": row.slot_restarts,
                "componentsDown": down,
                "status": "silent" if silent else ("degraded" if down else "up"),
            }
        )
    return {"status": "degraded" if degraded else "up", "list": workers}
