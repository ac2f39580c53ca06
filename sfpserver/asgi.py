"""ASGI entry point served by daphne: HTTP through Django, WebSockets through Channels.

In the embedded default the task worker runs inside this process (so in-memory channel events
reach the sockets served here); it is started once the Django app is ready. Live events are
sent from the server's own loop, which every connection registers (`apps.core.events`).
"""

import asyncio
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sfpserver.settings.base")

# Django must be set up before anything imports models (consumers, routing).
django_asgi_application = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from apps.core.events import use_server_loop  # noqa: E402
from apps.live.origin import OriginCheckedUnlessBearer  # noqa: E402
from apps.live.routing import websocket_urlpatterns  # noqa: E402


class PublishFromThisLoop:
    """Registers the loop serving connections as the one live events are sent from."""

    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        use_server_loop(asyncio.get_running_loop())
        return await self.inner(scope, receive, send)


routed = ProtocolTypeRouter(
    {
        "http": django_asgi_application,
        # Origin checked against ALLOWED_HOSTS unless a script brings a bearer token and no
        # Origin (apps/live/origin.py); the login session authenticates the dashboard.
        "websocket": OriginCheckedUnlessBearer(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
application = PublishFromThisLoop(routed)

if settings.SFP_EMBEDDED_WORKER:
    from apps.tasks.embedded import start_embedded_worker

    start_embedded_worker()
