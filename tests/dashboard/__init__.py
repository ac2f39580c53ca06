"""Tests of apps.dashboard."""
