"""Tests of apps.core."""
