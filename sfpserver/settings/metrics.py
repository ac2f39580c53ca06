"""Prometheus metrics at `/metrics` (django-prometheus).

Open by default, as scrapers on a private network expect; set `SFP_METRICS_TOKEN` to require
`Authorization: Bearer <token>` when the endpoint can be reached from outside.
"""

from sfpserver.env import env

SFP_METRICS_TOKEN = env.str("SFP_METRICS_TOKEN", default="")
PROMETHEUS_EXPORT_MIGRATIONS = False
