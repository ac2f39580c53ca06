"""`manage.py sso_refresh_metadata`: the scheduled pass that re-downloads every identity
provider's metadata URL (run it from cron or the task scheduler, e.g. hourly). A provider whose
download fails keeps its last good metadata; the error is recorded, audited and printed."""

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.sso.services import providers_refresh_all


class Command(BaseCommand):
    help = "Refresh the metadata of every SSO provider registered from a metadata URL."

    def handle(self, *args, **options):
        errors = providers_refresh_all()
        for provider_id, message in errors.items():
            self.stderr.write(f"{provider_id}: {message}")
        if errors:
            raise CommandError(f"{len(errors)} provider(s) could not be refreshed")
        self.stdout.write("SSO provider metadata refreshed.")
