"""Helpers shared by tests: subprocess servers and free ports."""
