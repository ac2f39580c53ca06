"""`manage.py rotate_encryption_key`: re-encrypt every sealed secret with the newest key.

Put the new key first in `SFP_ENCRYPTION_KEYS` (keep the old ones after it), run this, then
remove the old keys once it reports that nothing needs them. Each batch commits on its own and
only rows still sealed with an older key are touched, so an interrupted run (Ctrl-C, a crash,
or `--max-rows`) is resumed by running the command again. It verifies every secret at the end.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.integrations.vault import (
    SEALED_COLUMNS,
    VaultError,
    current_key,
    keyring,
    seal,
    sealed_key_id,
    unseal,
)


class Command(BaseCommand):
    help = "Re-encrypt every sealed secret with the first key of SFP_ENCRYPTION_KEYS, then verify."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=200)
        parser.add_argument(
            "--max-rows",
            type=int,
            default=None,
            help="Stop after re-encrypting this many secrets (run again to continue).",
        )
        parser.add_argument(
            "--verify-only", action="store_true", help="Only check which keys are in use."
        )

    def handle(self, *args, batch_size: int, max_rows: int | None, verify_only: bool, **options):
        newest = current_key()
        self.stdout.write(f"Newest key: {newest.kid} ({len(keyring())} key(s) configured)")
        if not verify_only:
            try:
                done = self._rotate(newest.kid, batch_size, max_rows)
            except KeyboardInterrupt:
                self.stdout.write(
                    self.style.WARNING("Interrupted: run the command again to resume.")
                )
                raise SystemExit(130) from None
            if max_rows is not None and done >= max_rows:
                self.stdout.write(
                    self.style.WARNING(f"Stopped after {done} secret(s): run again to resume.")
                )
                return
        self._verify(newest.kid)

    def _rotate(self, newest_kid: str, batch_size: int, max_rows: int | None) -> int:
        done = 0
        for column in SEALED_COLUMNS:
            model, field = column.model, column.field_name
            label = f"{model._meta.label_lower}.{field}"
            total = model.objects.exclude(**{field: ""}).count()
            stale = [
                pk for pk, value in model.objects.exclude(**{field: ""}).values_list("pk", field)
                if sealed_key_id(value) != newest_kid
            ]  # fmt: skip
            self.stdout.write(f"{label}: {len(stale)} of {total} need re-encryption")
            for start in range(0, len(stale), batch_size):
                batch = stale[start : start + batch_size]
                if max_rows is not None:
                    batch = batch[: max(0, max_rows - done)]
                if not batch:
                    break
                with transaction.atomic():
                    rows = model.objects.select_for_update().filter(pk__in=batch)
                    for pk, value in rows.values_list("pk", field):
                        if sealed_key_id(value) == newest_kid:
                            continue  # re-encrypted meanwhile (another run)
                        fresh = seal(
                            unseal(value, purpose=column.purpose).value, purpose=column.purpose
                        )
                        model.objects.filter(pk=pk).update(**{field: fresh})
                        done += 1
                self.stdout.write(f"  {label}: {min(start + len(batch), len(stale))}/{len(stale)}")
                if max_rows is not None and done >= max_rows:
                    return done
        return done

    def _verify(self, newest_kid: str) -> None:
        in_use: dict[str, int] = {}
        failures = []
        for column in SEALED_COLUMNS:
            model, field = column.model, column.field_name
            for pk, value in model.objects.exclude(**{field: ""}).values_list("pk", field):
                try:
                    unseal(value, purpose=column.purpose)
                except VaultError as error:
                    failures.append(f"{model._meta.label_lower}.{field} #{pk}: {error}")
                    continue
                kid = sealed_key_id(value)
                in_use[kid] = in_use.get(kid, 0) + 1
        if failures:
            raise CommandError("Secrets that do not open:\n" + "\n".join(failures))
        total = sum(in_use.values())
        stale = {kid: n for kid, n in in_use.items() if kid != newest_kid}
        if stale:
            raise CommandError(
                f"{sum(stale.values())} of {total} secret(s) still sealed with older keys "
                f"{sorted(stale)}: run rotate_encryption_key again"
            )
        retired = [key.kid for key in keyring() if key.kid != newest_kid]
        self.stdout.write(
            self.style.SUCCESS(f"Verified {total} secret(s): all sealed with {newest_kid}.")
        )
        if retired:
            self.stdout.write(f"No secret needs the older key(s) {retired}: they can be removed.")
