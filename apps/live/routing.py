"""WebSocket routes served by daphne through Channels: `/sfp/ws` (see `apps.live.events`)."""

from django.urls import path

from apps.live.consumers import LiveConsumer

websocket_urlpatterns: list = [path("sfp/ws", LiveConsumer.as_asgi())]
