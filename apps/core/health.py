"""Health checks of what the server cannot work without: database, channel layer, task backend.

Each check returns its latency or raises; `run_health_checks` runs them all and reports which
failed, with a short reason that never contains connection strings or secrets. Every task
backend provides its own `health_check()`.

The database and the task backend are critical (503 when down). The channel layer is not: with
Redis down the server keeps accepting and running work (live clients catch up from the database
when it returns), so it is reported `down` under a `degraded` overall status with 200. Apps add
a summary of their own (e.g. the task workers' heartbeats) with `register_summary`.
"""

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connections
from django.tasks import task_backends

CHANNEL_LAYER_TIMEOUT_SECONDS = 2.0


def check_database() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_channel_layer() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")

    async def round_trip() -> None:
        import asyncio

        channel = await layer.new_channel("health.")
        marker = uuid.uuid4().hex
        await layer.send(channel, {"type": "health.ping", "marker": marker})
        message = await asyncio.wait_for(layer.receive(channel), CHANNEL_LAYER_TIMEOUT_SECONDS)
        if message.get("marker") != marker:
            raise RuntimeError("channel layer returned a different message")

    async_to_sync(round_trip)()


def check_task_backend() -> None:
    backend = task_backends["default"]
    own_check = getattr(backend, "health_check", None)
    if not callable(own_check):
        raise RuntimeError(f"no health check for task backend {type(backend).__name__}")
    own_check()


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "channelLayer": check_channel_layer,
    "taskBackend": check_task_backend,
}
# Down, these make the server degraded, not unavailable.
NON_CRITICAL = {"channelLayer"}
# Name → callable returning a JSON-able summary (e.g. "workers"); a summary may say "degraded".
SUMMARIES: dict[str, Callable[[], dict]] = {}


def register_summary(name: str, summary: Callable[[], dict]) -> None:
    SUMMARIES[name] = summary


@dataclass
class HealthReport:
    checks: dict[str, dict]
    summaries: dict[str, dict] = field(default_factory=dict)

    @property
    def down(self) -> list[str]:
        return [name for name, result in self.checks.items() if result["status"] != "up"]

    @property
    def failed(self) -> list[str]:
        return [name for name in self.down if name not in NON_CRITICAL]

    @property
    def degraded(self) -> list[str]:
        down = [name for name in self.down if name in NON_CRITICAL]
        return down + [name for name, s in self.summaries.items() if s.get("status") == "degraded"]

    @property
    def healthy(self) -> bool:
        return not self.failed


def _reason(exc: Exception) -> str:
    """The first line of the error, cut short: enough to act on, too little to leak a DSN."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:200]


def run_health_checks() -> HealthReport:
    results: dict[str, dict] = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - every failure is a health result, not a crash
            results[name] = {"status": "down", "reason": _reason(exc)}
        else:
            latency_ms = round((time.perf_counter() - started) * 1000, 2)
            results[name] = {"status": "up", "latencyMs": latency_ms}
    summaries = {}
    if results["database"]["status"] == "up":
        for name, summary in SUMMARIES.items():
            try:
                summaries[name] = summary()
            except Exception as exc:  # noqa: BLE001 - a summary never breaks the report
                summaries[name] = {"status": "degraded", "reason": _reason(exc)}
    return HealthReport(checks=results, summaries=summaries)
