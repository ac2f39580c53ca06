"""Repositories (projects) onboarded to the server and their configuration, and later packages,
builds, release candidates, releases and deployment history."""
