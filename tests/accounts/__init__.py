"""Tests of apps.accounts."""
