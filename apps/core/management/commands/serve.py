"""`manage.py serve`: migrate, ensure an owner exists, then serve the ASGI app with daphne.

This is what `make run` does after installing; it asks nothing, and running it again reuses the
database and the data directory it finds.
"""

import os

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections


class Command(BaseCommand):
    help = "Migrate, create the first owner if none exists, and serve with daphne."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument(
            "--skip-bootstrap", action="store_true", help="Serve without migrating first."
        )
        parser.add_argument(
            "--ping-interval",
            type=int,
            default=20,
            help="Seconds between keepalive pings on each WebSocket (daphne's default).",
        )
        parser.add_argument(
            "--ping-timeout",
            type=int,
            default=30,
            help="Close a WebSocket that has not answered a ping for this long: a client that "
            "stopped reading is dropped instead of being buffered for forever.",
        )

    def handle(
        self,
        *args,
        host: str,
        port: int,
        skip_bootstrap: bool,
        ping_interval: int,
        ping_timeout: int,
        **options,
    ):
        if not skip_bootstrap:
            self.stdout.write("Applying database migrations…")
            call_command("migrate", interactive=False, verbosity=0)
            call_command("createowner", if_none=True)
        connections.close_all()

        from daphne.cli import CommandLineInterface

        self.stdout.write(self.style.SUCCESS(f"Serving on http://{host}:{port}/"))
        self.stdout.flush()
        CommandLineInterface().run(
            [
                *("-b", host, "-p", str(port)),
                *("--ping-interval", str(ping_interval), "--ping-timeout", str(ping_timeout)),
                "sfpserver.asgi:application",
            ]
        )
