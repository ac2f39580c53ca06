"""Tests of apps.environments."""
