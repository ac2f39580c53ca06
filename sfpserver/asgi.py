"""ASGI entry point served by daphne: HTTP through Django, WebSockets through Channels.

In the embedded default the task worker runs inside this process (so in-memory channel events
reach the sockets served here); it is started once the Django app is ready.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sfpserver.settings.base")

# Django must be set up before anything imports models (consumers, routing).
django_asgi_application = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from apps.live.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_application,
        # Origin checked against ALLOWED_HOSTS; the login session authenticates the dashboard.
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)

if settings.SFP_EMBEDDED_WORKER:
    from apps.tasks.embedded import start_embedded_worker

    start_embedded_worker()
