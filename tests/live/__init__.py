"""Tests of apps.live."""
