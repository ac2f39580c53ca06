"""SSO reads: which identity provider owns an email's domain."""

from apps.accounts.sso.models import SamlIdentityProvider, SsoDomain


def sso_provider_for_email(email: str) -> SamlIdentityProvider | None:
    domain = email.strip().lower().rpartition("@")[2]
    if not domain:
        return None
    owned = SsoDomain.objects.select_related("provider").filter(domain=domain).first()
    return owned.provider if owned else None
