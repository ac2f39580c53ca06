"""Live progress over Channels: WebSocket consumers, subscription rules, the event catalogue and
the dashboard pages that consume them. Domain apps never import it."""
