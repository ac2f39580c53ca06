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
