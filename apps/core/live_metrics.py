"""Prometheus metrics of the live layer, exported on `/metrics` with django-prometheus' own:
what was published, what the sockets forwarded, how many sockets are open, and how often a
socket had to heal a gap from the database. Counted per process (each daphne, gunicorn or worker
process exports its own)."""

from prometheus_client import Counter, Gauge

EVENTS_PUBLISHED = Counter(
    "sfp_live_events_published_total",
    "Live events handed to the channel layer, after their transaction committed.",
    ["event"],
)
PUBLISH_FAILURES = Counter(
    "sfp_live_event_publish_failures_total",
    "Live events the channel layer did not take (the change itself was kept).",
)
SOCKETS_OPEN = Gauge("sfp_live_sockets_open", "WebSocket connections open on /sfp/ws.")
EVENTS_SENT = Counter(
    "sfp_live_events_sent_total", "Live events forwarded to WebSocket clients.", ["event"]
)
DUPLICATES_DROPPED = Counter(
    "sfp_live_duplicates_dropped_total",
    "Events a socket did not forward because it had already sent that sequence number.",
)
RESYNCS = Counter(
    "sfp_live_resyncs_total",
    "Times a socket re-read a followed task from the database after a gap in its numbers.",
)
