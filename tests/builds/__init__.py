"""Tests of the builds app: webhooks, deliveries, routing, repository tokens, console."""
