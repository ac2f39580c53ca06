"""Writes of integrations and every read of their credentials (each one audited).

Credentials are validated, then sealed before the row is written; a rejected request writes
nothing. Creating, changing and deleting integrations needs a person (owner); application
tokens are refused here as well as by the endpoints' declared roles.
"""

from django.db import transaction
from django.http import HttpRequest

from apps.accounts.audit import audit_event
from apps.accounts.principal import Principal
from apps.accounts.roles import PRIVILEGED, require_any, require_human_owner
from apps.core.exceptions import InvalidRequest, NotFound
from apps.integrations.credential_schemas import validate_credentials
from apps.integrations.models import Integration
from apps.integrations.selectors import integrations_in_scope
from apps.integrations.vault import seal_for, unseal_from
from apps.projects.models import Project
from apps.projects.selectors import project_exists


def _require_person_owner(actor: Principal) -> None:
    require_human_owner(actor)


def _validate_scope(is_global: bool | None, projects: list[str] | None) -> None:
    if bool(is_global) == bool(projects):
        raise InvalidRequest(
            "Either isGlobal or projects must be specified (exactly one)",
            details={"isGlobal": ["Either isGlobal or projects."]},
        )
    unknown = [p for p in projects or [] if not project_exists(p)]
    if unknown:
        raise InvalidRequest(
            "Project not found: " + ", ".join(unknown),
            details={"projects": [f"Unknown project {p}." for p in unknown]},
        )


def _snapshot(integration: Integration) -> dict:
    return {
        "provider": integration.provider,
        "authType": integration.auth_type,
        "isGlobal": integration.is_global,
        "projects": sorted(integration.projects.values_list("identifier", flat=True)),
        "config": integration.config,
        "credentialFields": integration.credential_fields,
    }


@transaction.atomic
def integration_create(
    *,
    actor: Principal,
    provider: str,
    auth_type: str,
    credentials: dict,
    is_global: bool | None = None,
    projects: list[str] | None = None,
    config: dict | None = None,
    request: HttpRequest | None = None,
) -> Integration:
    _require_person_owner(actor)
    _validate_scope(is_global, projects)
    config = config or {}
    validate_credentials(provider, auth_type, credentials, config)
    integration = Integration(
        provider=provider,
        auth_type=auth_type,
        credential_fields=sorted(credentials),
        is_global=bool(is_global),
        config=config,
        created_by=actor.user.email,
    )
    integration.credentials = seal_for(Integration, "credentials", credentials)
    integration.save()
    if projects:
        integration.projects.set(Project.objects.filter(identifier__in=projects))
    audit_event(
        "integration.created",
        principal=actor,
        request=request,
        target_type="integration",
        target_id=integration.pk,
        after=_snapshot(integration),
    )
    return integration


@transaction.atomic
def integration_update(
    *,
    actor: Principal,
    integration: Integration,
    credentials: dict | None = None,
    config: dict | None = None,
    request: HttpRequest | None = None,
) -> Integration:
    """Replace the credentials and/or config; new credentials apply to the next task."""
    _require_person_owner(actor)
    before = _snapshot(integration)
    new_config = integration.config if config is None else config
    if credentials is not None:
        validate_credentials(integration.provider, integration.auth_type, credentials, new_config)
        integration.credentials = seal_for(Integration, "credentials", credentials)
        integration.credential_fields = sorted(credentials)
    elif config is not None:
        current = unseal_from(integration, "credentials").value
        validate_credentials(integration.provider, integration.auth_type, current, new_config)
    integration.config = new_config
    integration.save()
    after = _snapshot(integration) | {"credentialsReplaced": credentials is not None}
    audit_event(
        "integration.updated",
        principal=actor,
        request=request,
        target_type="integration",
        target_id=integration.pk,
        before=before,
        after=after,
    )
    return integration


@transaction.atomic
def integration_delete(
    *, actor: Principal, integration: Integration, request: HttpRequest | None = None
) -> None:
    _require_person_owner(actor)
    before = _snapshot(integration)
    integration_id = integration.pk
    integration.delete()
    audit_event(
        "integration.deleted",
        principal=actor,
        request=request,
        target_type="integration",
        target_id=integration_id,
        before=before,
    )


def reveal_integration(integration: Integration) -> dict:
    """The published credentials shape, decrypted. Callers audit who received it."""
    return {
        "integration_id": str(integration.pk),
        "provider": integration.provider,
        "auth_type": integration.auth_type,
        "credentials": unseal_from(integration, "credentials").value,
        "config": integration.config,
    }


@transaction.atomic
def integration_credentials_read(
    *,
    actor: Principal,
    provider: str,
    project: str | None = None,
    request: HttpRequest | None = None,
) -> list[dict]:
    """Decrypted credentials for owners and application tokens: project scope, then global."""
    require_any(actor, PRIVILEGED)
    found = integrations_in_scope(provider=provider, project=project)
    if not found:
        raise NotFound("No integration found for specified filters")
    for integration in found:
        audit_event(
            "credential.read",
            principal=actor,
            request=request,
            target_type="integration",
            target_id=integration.pk,
            after={
                "provider": integration.provider,
                "project": project,
                "scope": "global" if integration.is_global else "project",
            },
        )
    return [reveal_integration(integration) for integration in found]


def integration_test_connection(*, integration: Integration) -> dict:
    """Use the stored credentials against the provider; the credentials never leave the server."""
    from apps.integrations.providers import ProviderError, verify

    credentials = unseal_from(integration, "credentials").value
    try:
        details = verify(
            integration.provider, integration.auth_type, credentials, integration.config
        )
    except ProviderError as error:
        return {"success": False, "details": {"kind": error.kind}, "message": error.message}
    return {"success": True, "details": details, "message": "Connection succeeded"}
