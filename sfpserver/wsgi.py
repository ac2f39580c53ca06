"""WSGI entry point: the REST API and admin behind a WSGI server, when deployed that way."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sfpserver.settings.base")

application = get_wsgi_application()
