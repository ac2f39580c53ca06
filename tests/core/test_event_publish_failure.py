"""The except path of the live-event publisher: a channel layer that refuses (a Redis port with
nobody listening) costs a logged warning and a counted failure, never an exception in the work
that published; later sends skip the dead layer for a short backoff instead of waiting for it."""

import time

import pytest
import structlog
from channels.layers import channel_layers
from django.db import transaction
from django.test import override_settings

from apps.core import events
from apps.core.live_metrics import PUBLISH_FAILURES
from tests.support.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def dead_redis_layer():
    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{free_port()}/0"]},
        }
    }
    with override_settings(CHANNEL_LAYERS=layers, SFP_LIVE_PUBLISH_BACKOFF_SECONDS=30):
        channel_layers.backends.clear()
        events._last_failure = events._last_ok = 0.0
        yield
        events._last_failure = events._last_ok = 0.0
    channel_layers.backends.clear()


def test_a_failed_publish_is_logged_and_counted_and_the_work_goes_on(dead_redis_layer):
    before = PUBLISH_FAILURES._value.get()
    with structlog.testing.capture_logs() as logs, transaction.atomic():
        events.publish(["task.x"], "task.status", {"status": "active"}, seq=1)
    # (The commit ran the send: it failed, and nothing was raised here.)
    assert PUBLISH_FAILURES._value.get() == before + 1
    failure = next(entry for entry in logs if entry["event"] == "event_publish_failed")
    assert failure["event_type"] == "task.status"
    assert failure["groups"] == ["task.x"]
    assert failure["log_level"] == "warning"
    assert events.channel_layer_state() == "down"

    started = time.monotonic()
    with transaction.atomic():
        events.publish(["task.x"], "task.status", {"status": "completed"}, seq=2)
    assert time.monotonic() - started < 0.5  # skipped during the backoff, not retried
    assert PUBLISH_FAILURES._value.get() == before + 2
