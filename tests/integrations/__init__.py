"""Tests of apps.integrations."""
