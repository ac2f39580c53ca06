"""Source control drives the server: signed inbound webhooks, their delivery records, the routing
table that turns an event into work, and the repository API (application tokens for CI)."""
