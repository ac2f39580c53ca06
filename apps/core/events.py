"""Publishing live events: after the transaction commits, onto the channel layer.

Domain apps call `publish(groups, event_type, payload, seq=…)`; subscribers (the live app's
WebSocket consumers, or any channel-layer client) join groups named after objects
(`task.<operationId>`) or feeds (`tasks`). `seq` is the object's own event sequence number,
reserved by the domain app in the same transaction as the change, so subscribers can order events,
drop duplicates and notice gaps. Nothing is sent for a change that is rolled back, and a channel
layer that is down costs a warning, never the change itself.
"""

import re

import structlog
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = structlog.get_logger(__name__)

_INVALID = re.compile(r"[^A-Za-z0-9._-]")


def group_name(name: str) -> str:
    """Channel-layer group names allow letters, digits, hyphens and periods (under 100)."""
    return _INVALID.sub("-", name)[:99]


def _send(groups: list[str], message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    for group in groups:
        try:
            async_to_sync(layer.group_send)(group_name(group), message)
        except Exception:  # noqa: BLE001 - live updates must never break the work itself
            logger.warning("event_publish_failed", group=group, event=message.get("event"))


def publish(groups: list[str], event_type: str, payload: dict, *, seq: int) -> None:
    message = {"type": "sfp.event", "event": event_type, "seq": seq, "payload": payload}
    transaction.on_commit(lambda: _send(groups, message))
