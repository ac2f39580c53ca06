"""Live progress over Channels: the `/sfp/ws` consumer, its subscription rules and the event
catalogue. Domain apps never import it; the dashboard (`apps.dashboard`) is one of its clients."""
