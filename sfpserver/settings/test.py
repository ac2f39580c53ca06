"""Test settings: the production shape (PostgreSQL) with test-only secrets and fast hashing.

`make test` exports `DATABASE_URL` (and `REDIS_URL` when a Redis answers); this module only
fills in what a test run may safely invent.
"""

import os

os.environ.setdefault("SFP_MODE", "test")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production-use")
# 32 bytes, base64: a fixed test-only vault key.
os.environ.setdefault("SFP_ENCRYPTION_KEYS", "dGVzdC1vbmx5LXZhdWx0LWtleS0zMi1ieXRlcy0hISE=")

from sfpserver.settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SFP_EMBEDDED_WORKER = False

# One test database per run, so runs side by side (developers, helpers, CI) never collide.
DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}  # noqa: F405
