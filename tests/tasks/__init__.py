"""Tests of apps.tasks."""
