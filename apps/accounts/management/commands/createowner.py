"""`manage.py createowner --email E`: make E an owner of the first team, creating both if needed.

The password comes from standard input with `--password-stdin`, else one is generated and printed
once. `--if-none` does nothing when an owner already exists: that is how `make run` bootstraps
the instance (email and password from `SFP_ADMIN_EMAIL` / `SFP_ADMIN_PASSWORD`).
"""

import os
import sys

from django.core.management.base import BaseCommand, CommandError

from apps.accounts import services

DEFAULT_OWNER_EMAIL = "admin@localhost"


class Command(BaseCommand):
    help = "Make a user the owner of the first team (creating the user and the team if needed)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--email", help=f"Owner's email (default: $SFP_ADMIN_EMAIL or {DEFAULT_OWNER_EMAIL})"
        )
        parser.add_argument(
            "--password-stdin", action="store_true", help="Read the password from standard input."
        )
        parser.add_argument(
            "--team-slug", default="default", help="Slug of the first team, if it must be created."
        )
        parser.add_argument(
            "--team-name", default="Default", help="Name of the first team, if it must be created."
        )
        parser.add_argument(
            "--if-none", action="store_true", help="Do nothing when an owner already exists."
        )

    def handle(self, *args, email, password_stdin, team_slug, team_name, if_none, **options):
        if if_none and services.owner_exists():
            self.stdout.write("An owner already exists; nothing to do.")
            return
        email = (email or os.environ.get("SFP_ADMIN_EMAIL") or DEFAULT_OWNER_EMAIL).strip().lower()
        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
            if not password:
                raise CommandError("--password-stdin was given but standard input had no password")
        else:
            password = os.environ.get("SFP_ADMIN_PASSWORD") or None
        result = services.owner_bootstrap(
            email=email, password=password, team_slug=team_slug, team_name=team_name
        )
        verb = "Created" if result.created_user else "Promoted"
        self.stdout.write(self.style.SUCCESS(f"{verb} owner {email} of team {result.team.slug}"))
        if result.generated_password:
            # Shown once, on the terminal only: it is not kept anywhere in clear.
            self.stdout.write(f"Generated password (shown only now): {result.generated_password}")
