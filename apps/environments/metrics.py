"""Prometheus metrics of the environment lock queue: how long tickets wait to be granted and
how long holders keep them, by resource. Observed when the grant or release commits, in the
process that made it (summed across processes under `PROMETHEUS_MULTIPROC_DIR`)."""

from prometheus_client import Histogram

_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)

LOCK_WAIT = Histogram(
    "sfp_lock_wait_seconds",
    "From a lock ticket's request to its grant.",
    labelnames=["resource"],
    buckets=_BUCKETS,
)
LOCK_HOLD = Histogram(
    "sfp_lock_hold_seconds",
    "From a lock ticket's grant to its release, expiry or cancellation.",
    labelnames=["resource"],
    buckets=_BUCKETS,
)
