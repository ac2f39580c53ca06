"""Tests of apps.projects."""
