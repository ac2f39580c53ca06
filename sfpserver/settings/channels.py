"""Channel layer: Redis when `REDIS_URL` is set, else the in-memory layer (one process only).

The pub/sub flavour of channels-redis is used: it was the faster of the two here (see
docs/adr/0001), and nothing relies on the layer keeping messages, because clients catch up
from the database after a reconnect.
"""

from sfpserver.env import env

REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env.str("SFP_CHANNEL_PREFIX", "sfp")},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# How often an open /sfp/ws socket re-checks its caller (token revoked or expired, session ended,
# role lost): it is then closed with 4401 or 4403, as the API would refuse the next request.
SFP_LIVE_RECHECK_SECONDS = env.float("SFP_LIVE_RECHECK_SECONDS", default=60.0)
# After a failed publish, sends are skipped for this long (the channel layer is probably down).
SFP_LIVE_PUBLISH_BACKOFF_SECONDS = env.float("SFP_LIVE_PUBLISH_BACKOFF_SECONDS", default=2.0)
# A socket that has not authenticated this many seconds after it opened is closed with 4401.
SFP_LIVE_AUTH_SECONDS = env.float("SFP_LIVE_AUTH_SECONDS", default=10.0)
# Largest client frame, in characters; a larger one gets an error event (the socket stays open).
SFP_LIVE_MAX_FRAME_CHARS = env.int("SFP_LIVE_MAX_FRAME_CHARS", default=65536)
# Client frames per second a socket may send, and the burst it may save up; a frame over the
# limit gets an error event, and a socket that keeps going (more refused frames than the burst
# before it slows down) is closed with 4429.
SFP_LIVE_FRAMES_PER_SECOND = env.float("SFP_LIVE_FRAMES_PER_SECOND", default=10.0)
SFP_LIVE_FRAME_BURST = env.int("SFP_LIVE_FRAME_BURST", default=30)
# How often each server process checks that the channel layer carries its messages; when it does
# again after an outage, its sockets rejoin their groups and resync followed tasks from the DB.
SFP_LIVE_PROBE_SECONDS = env.float("SFP_LIVE_PROBE_SECONDS", default=1.0)
