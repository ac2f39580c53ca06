"""`manage.py ensure_admin`: create the first administrator when there is none, without prompting.

The email and password come from `SFP_ADMIN_EMAIL` / `SFP_ADMIN_PASSWORD`; without a password a
random one is generated and printed once (it is never logged or stored in clear).
"""

import os
import secrets

from django.core.management.base import BaseCommand
from django.db import transaction

from apps.accounts.models import User

DEFAULT_ADMIN_EMAIL = "admin@localhost"


class Command(BaseCommand):
    help = "Create the first administrator if no administrator exists yet."

    def handle(self, *args, **options):
        with transaction.atomic():
            if User.objects.filter(is_superuser=True).exists():
                self.stdout.write("An administrator already exists; nothing to do.")
                return
            email = os.environ.get("SFP_ADMIN_EMAIL") or DEFAULT_ADMIN_EMAIL
            password = os.environ.get("SFP_ADMIN_PASSWORD", "")
            generated = not password
            if generated:
                password = secrets.token_urlsafe(18)
            User.objects.create_superuser(email=email, password=password)

        self.stdout.write(self.style.SUCCESS(f"Created the first administrator: {email}"))
        if generated:
            # Shown once, on the terminal only: it is not kept anywhere in clear.
            self.stdout.write(f"Generated password (shown only now): {password}")
