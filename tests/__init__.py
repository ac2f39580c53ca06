"""Test suite; mirrors apps/."""
