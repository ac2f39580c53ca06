"""Noticing that the channel layer came back, so sockets heal what its outage cost them.

A Redis restart loses what pub/sub was carrying, and may lose the layer's group subscriptions;
a socket would not know until its followed task's next event showed a gap, and a task that ended
during the outage sends none. So each server process runs one watch on its loop while it has
sockets: every `SFP_LIVE_PROBE_SECONDS` it sends a probe to a group of its own and waits for it
to come back. When a probe gets through after one or more that did not, every socket of the
process joins its groups again and re-reads the tasks it follows from the database
(`LiveConsumer.heal`): the missed log lines, then the current state, numbered as always.
"""

import asyncio
import uuid

import structlog
from channels.layers import get_channel_layer
from django.conf import settings

from apps.core.events import group_name

logger = structlog.get_logger(__name__)

PROBE = "live.probe"
PROBE_TIMEOUT_SECONDS = 5.0


class LayerWatch:
    def __init__(self):
        self.sockets: set = set()
        self.running: asyncio.Task | None = None
        self.group = group_name(f"live-probe.{uuid.uuid4().hex}")

    def add(self, socket) -> None:
        self.sockets.add(socket)
        if self.running is None or self.running.done():
            self.running = asyncio.ensure_future(self._watch())

    def discard(self, socket) -> None:
        self.sockets.discard(socket)

    async def _watch(self) -> None:
        layer, channel, reachable, count = get_channel_layer(), None, True, 0
        while self.sockets:
            await asyncio.sleep(settings.SFP_LIVE_PROBE_SECONDS)
            count += 1
            try:
                channel = channel or await layer.new_channel()
                await layer.group_add(self.group, channel)
                await layer.group_send(self.group, {"type": PROBE, "count": count})
                await asyncio.wait_for(_probe_back(layer, channel, count), _probe_timeout())
            except Exception as error:  # noqa: BLE001 - an unreachable layer is what we watch for
                # A receive cut short by the timeout gives its channel up: take a new one.
                channel = None
                if reachable:
                    logger.warning("live_layer_unreachable", reason=type(error).__name__)
                reachable = False
                continue
            if not reachable:
                healed = await asyncio.gather(
                    *(socket.heal() for socket in list(self.sockets)), return_exceptions=True
                )
                failed = sum(isinstance(outcome, BaseException) for outcome in healed)
                logger.info("live_layer_back", sockets=len(healed), heal_failed=failed)
            reachable = True
        if channel is not None:
            await layer.group_discard(self.group, channel)


async def _probe_back(layer, channel: str, count: int) -> None:
    while (await layer.receive(channel)).get("count") != count:
        pass  # an answer to an earlier probe that came late


def _probe_timeout() -> float:
    """How long a probe may take before the layer counts as unreachable. Long, on purpose: a
    Redis that is down fails the send at once; a timeout only has to catch subscriptions lost
    while Redis answers, and a short one would take a loop busy with a large fan-out for an
    outage and have every socket resync at once, making it busier still."""
    return max(PROBE_TIMEOUT_SECONDS, settings.SFP_LIVE_PROBE_SECONDS)


_watches: dict[asyncio.AbstractEventLoop, LayerWatch] = {}


def layer_watch() -> LayerWatch:
    """The watch of the running loop (one per server process; tests run a loop per test)."""
    loop = asyncio.get_running_loop()
    for stale in [other for other in _watches if other.is_closed()]:
        del _watches[stale]
    return _watches.setdefault(loop, LayerWatch())
