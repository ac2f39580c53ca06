"""`manage.py saml_init [--rotate | --retire-older]`: the SP's SAML signing key.

Without options it generates the key on first run (production init; the embedded default does the
same on the first metadata request) and prints the certificate fingerprint. `--rotate` adds a new
key that signs from now on while the previous certificate stays published; `--retire-older` ends
that overlap once the identity providers have picked up the new metadata.
"""

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from django.core.management.base import BaseCommand

from apps.accounts.sso import saml


class Command(BaseCommand):
    help = "Create, rotate or retire the SAML service provider's signing key."

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--rotate", action="store_true", help="Add a new signing key.")
        group.add_argument(
            "--retire-older", action="store_true", help="Stop publishing all but the newest key."
        )

    def handle(self, *args, rotate=False, retire_older=False, **options):
        if retire_older:
            self.stdout.write(f"Retired {saml.signing_key_retire_older()} older key(s).")
            return
        key = saml.signing_key_create() if rotate else saml.signing_key_ensure()
        certificate = x509.load_pem_x509_certificate(key.certificate.encode())
        fingerprint = certificate.fingerprint(hashes.SHA256()).hex(":")
        self.stdout.write(f"SAML signing certificate SHA-256 {fingerprint}")
        self.stdout.write(f"SP metadata: {saml.sp_entity_id()}")
