"""SSO writes: identity providers (register, refresh, delete) and signing users in from a
validated identity, ending in the same session a password login starts.

Every provider change, SSO login and refusal is audited; a refusal's `login.failed` row names the
provider and the reason.
"""

import re
import uuid

import requests
from django.conf import settings
from django.contrib.auth import login as auth_login
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from apps.accounts.audit import audit_event
from apps.accounts.models import Membership, Team, TeamRole, User
from apps.accounts.principal import Principal, principal_for_user
from apps.accounts.services import SessionTokens, _require_user_principal, _start_session
from apps.accounts.sso.models import SamlIdentityProvider, SsoDomain
from apps.accounts.sso.saml import MetadataInvalid, SamlIdentity, metadata_parse
from apps.core.exceptions import Conflict, InvalidRequest, NotFound

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_MAX_METADATA_BYTES = 1_000_000


class SsoLoginRefused(Exception):
    """A valid identity that may not sign in here; the message is safe to show."""


def _provider_snapshot(provider: SamlIdentityProvider) -> dict:
    return {
        "entityId": provider.entity_id,
        "ssoUrl": provider.sso_url,
        "metadataUrl": provider.metadata_url,
        "domains": sorted(provider.domains.values_list("domain", flat=True)),
    }


def metadata_download(url: str) -> str:
    """The document at `url`, or `InvalidRequest` saying why it could not be fetched."""
    try:
        response = requests.get(
            url, timeout=settings.SFP_SAML_METADATA_TIMEOUT_SECONDS, stream=True
        )
        body = response.raw.read(_MAX_METADATA_BYTES + 1, decode_content=True)
    except requests.RequestException as error:
        raise InvalidRequest(f"metadataUrl could not be fetched: {type(error).__name__}") from None
    if response.status_code != 200:
        raise InvalidRequest(f"metadataUrl answered HTTP {response.status_code}")
    if len(body) > _MAX_METADATA_BYTES:
        raise InvalidRequest("metadata is larger than 1 MB")
    return body.decode("utf-8", errors="replace")


def _parsed(xml: str):
    try:
        return metadata_parse(xml)
    except MetadataInvalid as invalid:
        raise InvalidRequest(str(invalid), details={"metadata": [str(invalid)]}) from None


def _clean_domains(domains: list[str]) -> list[str]:
    cleaned = sorted({d.strip().lower() for d in domains})
    bad = [d for d in cleaned if not _DOMAIN.match(d)]
    if not cleaned or bad:
        raise InvalidRequest(
            "domains must list at least one email domain such as example.com",
            details={"domains": [f"Not an email domain: {d}" for d in bad] or ["Required."]},
        )
    return cleaned


@transaction.atomic
def provider_create(
    *,
    actor: Principal,
    domains: list[str],
    metadata_url: str = "",
    metadata_xml: str = "",
    provision_team_slug: str = "",
    sso_required: bool = False,
    request: HttpRequest | None = None,
) -> SamlIdentityProvider:
    _require_user_principal(actor)
    if bool(metadata_url) == bool(metadata_xml):
        raise InvalidRequest("Give exactly one of metadataUrl and metadataXml")
    domains = _clean_domains(domains)
    team = None
    if provision_team_slug:
        team = Team.objects.filter(slug=provision_team_slug).first()
        if team is None:
            raise InvalidRequest(f"Team {provision_team_slug} not found")
    xml = metadata_download(metadata_url) if metadata_url else metadata_xml
    parsed = _parsed(xml)
    taken = list(SsoDomain.objects.filter(domain__in=domains).values_list("domain", flat=True))
    if taken:
        raise Conflict(f"Domain already belongs to another provider: {', '.join(taken)}")
    if SamlIdentityProvider.objects.filter(entity_id=parsed.entity_id).exists():
        raise Conflict(f"Identity provider {parsed.entity_id} is already registered")
    try:
        with transaction.atomic():
            provider = SamlIdentityProvider.objects.create(
                entity_id=parsed.entity_id,
                sso_url=parsed.sso_url,
                signing_certificates=parsed.signing_certificates,
                metadata_url=metadata_url,
                metadata_xml=xml,
                provision_team=team,
                created_by=actor.user,
                metadata_refreshed_at=timezone.now(),
            )
            SsoDomain.objects.bulk_create(
                SsoDomain(domain=d, provider=provider, sso_required=sso_required) for d in domains
            )
    except IntegrityError:  # a concurrent registration took the entity id or a domain
        raise Conflict("Identity provider or domain registered concurrently") from None
    audit_event(
        "sso.provider.created",
        principal=actor,
        request=request,
        target_type="sso_provider",
        target_id=str(provider.pk),
        after=_provider_snapshot(provider),
    )
    return provider


@transaction.atomic
def provider_delete(*, actor: Principal, provider_id: str, request=None) -> None:
    _require_user_principal(actor)
    provider = _provider(provider_id)
    before = _provider_snapshot(provider)
    provider.delete()
    audit_event(
        "sso.provider.deleted",
        principal=actor,
        request=request,
        target_type="sso_provider",
        target_id=provider_id,
        before=before,
    )


def _provider(provider_id: str) -> SamlIdentityProvider:
    try:
        uuid.UUID(str(provider_id))
    except ValueError:
        raise NotFound(f"SSO provider {provider_id} not found") from None
    provider = SamlIdentityProvider.objects.filter(pk=provider_id).first()
    if provider is None:
        raise NotFound(f"SSO provider {provider_id} not found")
    return provider


def provider_refresh(
    *, provider: SamlIdentityProvider, actor: Principal | None = None, request=None
) -> SamlIdentityProvider:
    """Download and re-parse a provider's metadata URL. A failure keeps the last good metadata
    and records the error; it is raised to an interactive caller."""
    if not provider.metadata_url:
        raise InvalidRequest("This provider was registered from XML; it has no metadataUrl")
    before = _provider_snapshot(provider)
    try:
        parsed = _parsed(metadata_download(provider.metadata_url))
    except InvalidRequest as failed:
        SamlIdentityProvider.objects.filter(pk=provider.pk).update(
            metadata_refresh_error=failed.message
        )
        audit_event(
            "sso.provider.refresh_failed",
            principal=actor,
            request=request,
            target_type="sso_provider",
            target_id=str(provider.pk),
            after={"error": failed.message},
        )
        raise
    with transaction.atomic():
        provider.entity_id = parsed.entity_id
        provider.sso_url = parsed.sso_url
        provider.signing_certificates = parsed.signing_certificates
        provider.metadata_refreshed_at = timezone.now()
        provider.metadata_refresh_error = ""
        provider.save()
        audit_event(
            "sso.provider.refreshed",
            principal=actor,
            request=request,
            target_type="sso_provider",
            target_id=str(provider.pk),
            before=before,
            after=_provider_snapshot(provider),
        )
    return provider


def provider_refresh_by_id(*, actor: Principal, provider_id: str, request=None):
    _require_user_principal(actor)
    return provider_refresh(provider=_provider(provider_id), actor=actor, request=request)


def providers_refresh_all() -> dict[str, str]:
    """The scheduled pass: refresh every provider registered from a URL; returns errors by id."""
    errors = {}
    for provider in SamlIdentityProvider.objects.exclude(metadata_url=""):
        try:
            provider_refresh(provider=provider)
        except InvalidRequest as failed:
            errors[str(provider.pk)] = failed.message
    return errors


# --- signing in -----------------------------------------------------------------------------


def sso_login_refused(*, request: HttpRequest, provider, reason: str, email: str = "") -> None:
    """The `login.failed` row of a refused SSO login (committed even though login fails)."""
    audit_event(
        "login.failed",
        request=request,
        target_type="user",
        target_id=email,
        after={
            "method": "saml",
            "provider": provider.entity_id if provider else None,
            "providerId": str(provider.pk) if provider else None,
            "reason": reason,
        },
    )


def _owner_emails() -> list[str]:
    return sorted(
        Membership.objects.filter(role=TeamRole.OWNER, user__is_active=True).values_list(
            "user__email", flat=True
        )
    )[:3]


def _first(attributes: dict, *names: str) -> str:
    for name in names:
        values = attributes.get(name) or []
        if values and values[0]:
            return str(values[0])[:150]
    return ""


_GIVEN = (
    "firstName",
    "givenName",
    "urn:oid:2.5.4.42",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
)
_SURNAME = (
    "lastName",
    "sn",
    "surname",
    "urn:oid:2.5.4.4",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
)


def sso_user_resolve(*, identity: SamlIdentity) -> User:
    """The user a validated identity signs in as (provisioned when the provider allows)."""
    domain = identity.email.rpartition("@")[2]
    if not SsoDomain.objects.filter(domain=domain, provider=identity.provider).exists():
        raise SsoLoginRefused(f"{domain} is not a domain of this identity provider")
    with transaction.atomic():
        user = User.objects.filter(email__iexact=identity.email).first()
        team = identity.provider.provision_team
        if user is None and team is None:
            owners = ", ".join(_owner_emails()) or "an owner"
            raise SsoLoginRefused(f"{identity.email} has no account here; ask {owners} to add you")
        if user is not None and not user.is_active:
            raise SsoLoginRefused("This account is deactivated")
        if user is None:
            user = User.objects.create_user(email=identity.email, password=None)
            Membership.objects.create(team=team, user=user, role=TeamRole.MEMBER)
            audit_event(
                "user.provisioned",
                principal=principal_for_user(user),
                target_type="user",
                target_id=user.email,
                after={
                    "team": team.slug,
                    "role": TeamRole.MEMBER,
                    "provider": identity.provider.entity_id,
                },
            )
        elif not user.memberships.exists():
            raise SsoLoginRefused("This account holds no team role; ask an owner to add you")
        first, last = _first(identity.attributes, *_GIVEN), _first(identity.attributes, *_SURNAME)
        if (first and first != user.first_name) or (last and last != user.last_name):
            user.first_name, user.last_name = first or user.first_name, last or user.last_name
            user.save(update_fields=["first_name", "last_name"])
    return user


def _audit_sso_login(user: User, identity: SamlIdentity, request: HttpRequest, session: str):
    audit_event(
        "login.succeeded",
        principal=principal_for_user(user),
        request=request,
        target_type="user",
        target_id=user.email.lower(),
        after={"method": "saml", "provider": identity.provider.entity_id, "session": session},
    )


def sso_browser_login(*, user: User, identity: SamlIdentity, request: HttpRequest) -> None:
    """The dashboard's cookie session, exactly as a password login starts it."""
    with transaction.atomic():
        auth_login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        _audit_sso_login(user, identity, request, "browser")


def sso_session_login(*, user: User, identity: SamlIdentity, request: HttpRequest) -> SessionTokens:
    """The API session (JWT + rotating refresh token), exactly as a password login starts it."""
    with transaction.atomic():
        tokens = _start_session(user, uuid.uuid4())
        user.last_login = timezone.now()
        user.save(update_fields=["last_login"])
        _audit_sso_login(user, identity, request, "api")
    return tokens
