"""Publishing live events: after the transaction commits, onto the channel layer.

Domain apps call `publish(groups, event_type, payload, seq=…)`; subscribers (the live app's
WebSocket consumers, or any channel-layer client) join groups named after objects
(`task.<operationId>`) or feeds (`tasks`). `seq` is the object's own event sequence number,
reserved by the domain app in the same transaction as the change, so subscribers can order events,
drop duplicates and notice gaps. Nothing is sent for a change that is rolled back, and a channel
layer that is down costs a warning, never the change itself.

Sends run on one long-lived event loop per process, never a new loop per call (which would open
a new Redis connection every time): the server's own loop where there is one (the ASGI app
registers it; the in-memory layer of the embedded default must be used from that loop only), or
else a private publisher thread's (worker processes).
"""

import asyncio
import os
import re
import threading

import structlog
from channels.layers import get_channel_layer
from django.db import transaction

from apps.core.live_metrics import EVENTS_PUBLISHED, PUBLISH_FAILURES

logger = structlog.get_logger(__name__)

_INVALID = re.compile(r"[^A-Za-z0-9._-]")
SEND_TIMEOUT_SECONDS = 5.0

_server_loop: asyncio.AbstractEventLoop | None = None
_private_loop: asyncio.AbstractEventLoop | None = None
_private_loop_pid = 0  # a forked child (a WSGI worker) inherits the variable, not the thread
_private_loop_lock = threading.Lock()


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
    layer = get_channel_layer()
    if layer is None:
        return
    loop = _publisher_loop()
    future = asyncio.run_coroutine_threadsafe(_send_to_groups(layer, groups, message), loop)
    if _in_thread_of(loop):
        return  # called on the loop itself: it runs once this callback returns
    try:
        future.result(timeout=SEND_TIMEOUT_SECONDS)
    except Exception:  # noqa: BLE001 - live updates must never break the work itself
        future.cancel()
        PUBLISH_FAILURES.inc()
        logger.warning("event_publish_failed", groups=groups, event=message.get("event"))


def _in_thread_of(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def publish(groups: list[str], event_type: str, payload: dict, *, seq: int) -> None:
    message = {"type": "sfp.event", "event": event_type, "seq": seq, "payload": payload}
    transaction.on_commit(lambda: _send(groups, message))
