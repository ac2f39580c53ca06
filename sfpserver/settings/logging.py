"""Structured logging: one JSON object per line on stdout, through structlog.

Standard-library loggers (Django, daphne, libraries) go through the same renderer, so every line
has the same shape. Request-scoped fields (request id, actor) are bound by
`apps.core.middleware.RequestContextMiddleware` through structlog's context variables.
`LOG_FORMAT=console` renders readable lines for development instead.
"""

import structlog

from sfpserver.env import env

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOG_FORMAT = env.str("LOG_FORMAT", default="json")

_shared_processors = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]

_renderer = (
    structlog.dev.ConsoleRenderer(colors=False)
    if LOG_FORMAT == "console"
    else structlog.processors.JSONRenderer()
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structured": {
            "()": structlog.stdlib.ProcessorFormatter,
            "processors": [
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _renderer,
            ],
            "foreign_pre_chain": _shared_processors,
        }
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "structured",
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # Requests are logged once by our middleware; Django's own request logger would repeat them.
        "django.request": {"level": "CRITICAL"},
        "django.server": {"level": "WARNING"},
        "daphne.access": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}

structlog.configure(
    processors=[
        *_shared_processors,
        structlog.processors.StackInfoRenderer(),
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)
