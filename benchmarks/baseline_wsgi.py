"""The bare Django baseline for `benchmarks.api`: one view doing one indexed SELECT on PostgreSQL.

Django configured in a few lines (no apps, no middleware), served by gunicorn with the same
workers and threads as the API, on the same database with the same persistent connections
(`CONN_MAX_AGE`), so the difference measured is what the project's stack adds per request.
"""

import os
import random

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="benchmark-baseline-only",  # noqa: S106 - signs nothing
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ["BASELINE_DATABASE_NAME"],
            "HOST": "127.0.0.1",
            "USER": "postgres",
            "CONN_MAX_AGE": 60,
        }
    },
)
django.setup()

from django.db import connection  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402

BASELINE_ROWS = 1000


def one_row(request):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, name FROM benchmark_baseline WHERE id = %s",
            [random.randint(1, BASELINE_ROWS)],  # noqa: S311 - a benchmark's key, not a secret
        )
        row_id, name = cursor.fetchone()
    response = JsonResponse({"id": row_id, "name": name})
    # What CommonMiddleware adds for ours: keep-alive without chunked framing.
    response["Content-Length"] = str(len(response.content))
    return response


urlpatterns = [path("", one_row)]

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
