"""Reads of integration metadata (never credentials: those go through services, audited)."""

from django.db.models import QuerySet

from apps.core.exceptions import NotFound
from apps.integrations.models import Integration, Provider

# The published enum has both spellings for Azure DevOps; a lookup by either finds both.
_ALIASES = {
    Provider.AZUREDEVOPS: [Provider.AZUREDEVOPS, Provider.AZURE_DEVOPS],
    Provider.AZURE_DEVOPS: [Provider.AZUREDEVOPS, Provider.AZURE_DEVOPS],
}


def provider_spellings(provider: str) -> list[str]:
    return [str(p) for p in _ALIASES.get(provider, [provider])]


def integrations_list(*, provider: str | None = None) -> QuerySet[Integration]:
    integrations = Integration.objects.all()
    if provider:
        integrations = integrations.filter(provider__in=provider_spellings(provider))
    return integrations.order_by("provider", "created_at")


def integration_get(integration_id) -> Integration:
    integration = Integration.objects.filter(pk=integration_id).first()
    if integration is None:
        raise NotFound(f"Integration {integration_id} not found")
    return integration


def integrations_in_scope(*, provider: str, project: str | None) -> list[Integration]:
    """The project's own integrations for the provider; the global ones when it has none."""
    candidates = integrations_list(provider=provider)
    if project:
        scoped = list(candidates.filter(is_global=False, projects__identifier=project))
        if scoped:
            return scoped
    return list(candidates.filter(is_global=True))


def integration_dto(integration: Integration) -> dict:
    """Metadata only: the credential field names, never their values."""
    return {
        "id": str(integration.pk),
        "provider": integration.provider,
        "authType": integration.auth_type,
        "isGlobal": integration.is_global,
        "projects": sorted(integration.projects.values_list("identifier", flat=True)),
        "config": integration.config,
        "credentialFields": integration.credential_fields,
        "createdBy": integration.created_by,
        "createdAt": integration.created_at.isoformat(),
        "updatedAt": integration.updated_at.isoformat(),
    }
