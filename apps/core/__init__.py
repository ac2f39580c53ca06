"""Plumbing every app shares: the error envelope, request context (request id, actor), health
checks, structured logging helpers and metrics access. Core imports no domain app."""
