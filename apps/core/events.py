"""Publishing live events: after the transaction commits, onto the channel layer.

Domain apps call `publish(groups, event_type, payload, seq=…)`; subscribers (the live app's
WebSocket consumers, or any channel-layer client) join groups named after objects
(`task.<operationId>`) or feeds (`tasks`). `seq` is the object's own event sequence number,
reserved by the domain app in the same transaction as the change, so subscribers can order events,
drop duplicates and notice gaps. Nothing is sent for a change that is rolled back, and a channel
layer that is down costs a warning, never the change itself: after a failed send, sends are
skipped (and counted as failures) for `SFP_LIVE_PUBLISH_BACKOFF_SECONDS`, so an outage does not
cost every status change the send timeout; subscribers heal the gap from the database (their
sequence numbers show it) once the layer is back. `channel_layer_state()` tells health checks and
worker heartbeats whether the last send of this process failed.

Sends run on one long-lived event loop per process, never a new loop per call (which would open
a new Redis connection every time): the server's own loop where there is one (the ASGI app
registers it; the in-memory layer of the embedded default must be used from that loop only), or
else a private publisher thread's (worker processes).
"""

import asyncio
import os
import re
import threading
import time

import structlog
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

from apps.core.live_metrics import EVENTS_PUBLISHED, PUBLISH_FAILURES

logger = structlog.get_logger(__name__)

_INVALID = re.compile(r"[^A-Za-z0-9._-]")
SEND_TIMEOUT_SECONDS = 5.0

_server_loop: asyncio.AbstractEventLoop | None = None
_private_loop: asyncio.AbstractEventLoop | None = None
_private_loop_pid = 0  # a forked child (a WSGI worker) inherits the variable, not the thread
_private_loop_lock = threading.Lock()
# Monotonic times of this process's last successful and last failed send (0: never).
_last_ok = 0.0
_last_failure = 0.0


def group_name(name: str) -> str:
    """Channel-layer group names allow letters, digits, hyphens and periods (under 100)."""
    return _INVALID.sub("-", name)[:99]


def use_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    """The ASGI server's loop: events are sent from it, where the sockets are served."""
    global _server_loop
    _server_loop = loop


def _publisher_loop() -> asyncio.AbstractEventLoop:
    global _private_loop, _private_loop_pid
    if _server_loop is not None and _server_loop.is_running():
        return _server_loop
    with _private_loop_lock:
        if (
            _private_loop is None
            or not _private_loop.is_running()
            or _private_loop_pid != os.getpid()
        ):
            loop = asyncio.new_event_loop()
            started = threading.Event()
            loop.call_soon(started.set)
            publisher = threading.Thread(
                target=loop.run_forever, name="sfp-event-publisher", daemon=True
            )
            publisher.start()
            started.wait()
            _private_loop, _private_loop_pid = loop, os.getpid()
        return _private_loop


async def _send_to_groups(layer, groups: list[str], message: dict) -> None:
    for group in groups:
        await layer.group_send(group_name(group), message)
    EVENTS_PUBLISHED.labels(event=message.get("event", "")).inc()


def _send(groups: list[str], message: dict) -> None:
    global _last_ok
    layer = get_channel_layer()
    if layer is None:
        return
    if time.monotonic() - _last_failure < settings.SFP_LIVE_PUBLISH_BACKOFF_SECONDS:
        _record_failure(groups, message, reason="skipped: the channel layer failed recently")
        return
    loop = _publisher_loop()
    future = asyncio.run_coroutine_threadsafe(_send_to_groups(layer, groups, message), loop)
    if _in_thread_of(loop):
        return  # called on the loop itself: it runs once this callback returns
    try:
        future.result(timeout=SEND_TIMEOUT_SECONDS)
    except Exception as error:  # noqa: BLE001 - live updates must never break the work itself
        future.cancel()
        _record_failure(groups, message, reason=f"{type(error).__name__}: {error}"[:200])
    else:
        _last_ok = time.monotonic()


def _record_failure(groups: list[str], message: dict, *, reason: str) -> None:
    global _last_failure
    skipped = reason.startswith("skipped")
    if not skipped:
        _last_failure = time.monotonic()
    PUBLISH_FAILURES.inc()
    # `event` is structlog's own first argument: the live event's type goes under another key.
    log = logger.debug if skipped else logger.warning
    log("event_publish_failed", groups=groups, event_type=message.get("event"), reason=reason)


def channel_layer_state() -> str:
    """ "down" when this process's last send failed (and none succeeded since), else "up"."""
    return "down" if _last_failure and _last_failure >= _last_ok else "up"


def _in_thread_of(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def publish(groups: list[str], event_type: str, payload: dict, *, seq: int) -> None:
    message = {"type": "sfp.event", "event": event_type, "seq": seq, "payload": payload}
    transaction.on_commit(lambda: _send(groups, message))
