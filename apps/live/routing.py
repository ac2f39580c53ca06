"""WebSocket routes served by daphne through Channels (`/sfp/ws` arrives with live progress)."""

websocket_urlpatterns: list = []
