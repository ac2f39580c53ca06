"""Task-scoped credential grants: exactly the credentials one task needs, for one worker, while
that task runs.

The tasks app issues a grant when it starts an execution (`grant_issue`, keyed by the execution's
opaque operation id) and ends it when the execution finishes (`grant_end`); the worker redeems it
over `POST /sfp/api/flows/internal/credential-grants/{id}/redeem` with its application token.
Each kind of credential ("integration", "salesforce_org", …) is resolved by the app that owns it,
registered with `register_resolver`, so the vault never imports its callers. Every redemption is
audited, item by item.
"""

from collections.abc import Callable
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone

from apps.accounts.audit import audit_event
from apps.accounts.principal import Principal
from apps.core.exceptions import Forbidden, Gone, InvalidRequest, NotFound
from apps.integrations.models import CredentialGrant
from apps.integrations.vault import unseal_from

DEFAULT_GRANT_TTL_SECONDS = 6 * 3600

# kind -> function(ref) returning the revealed credentials; raises NotFound.
Resolver = Callable[[dict], dict]
_RESOLVERS: dict[str, Resolver] = {}


def register_resolver(kind: str, resolver: Resolver) -> None:
    _RESOLVERS[kind] = resolver


def _normalise(items: list[dict]) -> list[dict]:
    if not isinstance(items, list) or not items:
        raise InvalidRequest(
            "A grant names at least one credential", details={"items": ["Required."]}
        )
    normalised = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("ref"), dict):
            raise InvalidRequest(
                "Each item needs a kind and a ref object", details={"items": ["Invalid."]}
            )
        if item.get("kind") not in _RESOLVERS:
            raise InvalidRequest(
                f"Unknown credential kind {item.get('kind')!r}; "
                f"known: {', '.join(sorted(_RESOLVERS))}",
                details={"items": ["Unknown kind."]},
            )
        entry = {"kind": item["kind"], "ref": dict(sorted(item["ref"].items()))}
        if item.get("alias"):
            entry["alias"] = str(item["alias"])  # how the task refers to it (e.g. "target")
        normalised.append(entry)
    return normalised


@transaction.atomic
def grant_issue(
    *,
    operation_id: str,
    grantee_token_id: str,
    items: list[dict],
    ttl_seconds: int = DEFAULT_GRANT_TTL_SECONDS,
) -> CredentialGrant:
    grant = CredentialGrant.objects.create(
        operation_id=operation_id,
        grantee_token_id=grantee_token_id,
        items=_normalise(items),
        expires_at=timezone.now() + timedelta(seconds=ttl_seconds),
    )
    audit_event(
        "grant.issued",
        target_type="credential_grant",
        target_id=grant.pk,
        after={"operationId": operation_id, "grantee": grantee_token_id, "items": grant.items},
    )
    return grant


@transaction.atomic
def grant_end(*, operation_id: str, reason: str) -> int:
    """End every live grant of a task (completed, failed, cancelled, timed out)."""
    ended = CredentialGrant.objects.filter(operation_id=operation_id, ended_at__isnull=True).update(
        ended_at=timezone.now(), end_reason=reason[:32]
    )
    if ended:
        audit_event(
            "grant.ended",
            target_type="operation",
            target_id=operation_id,
            after={"reason": reason, "grants": ended},
        )
    return ended


def grant_redeem(
    *,
    principal: Principal,
    grant_id,
    items: list[dict] | None = None,
    request: HttpRequest | None = None,
) -> list[dict]:
    """The named credentials, decrypted, for the grant's own worker while the grant is live."""
    with transaction.atomic():
        grant = CredentialGrant.objects.select_for_update().filter(pk=grant_id).first()
        if grant is None:
            raise NotFound(f"Credential grant {grant_id} not found")
        if not principal.is_token or principal.token.pk != grant.grantee_token_id:
            raise Forbidden("This grant was issued to another worker")
        if grant.ended_at is not None:
            raise Gone(f"Grant has ended: its task {grant.end_reason or 'finished'}")
        if grant.expires_at <= timezone.now():
            raise Gone("Grant has expired")
        wanted = grant.items if items is None else _normalise(items)
        not_named = [item for item in wanted if item not in grant.items]
        if not_named:
            raise Forbidden(
                "Grant does not name: " + ", ".join(f"{i['kind']} {i['ref']}" for i in not_named)
            )
        CredentialGrant.objects.filter(pk=grant.pk).update(redemptions=F("redemptions") + 1)

    revealed = []
    for item in wanted:
        credentials = _RESOLVERS[item["kind"]](item["ref"])
        audit_event(
            "credential.read",
            principal=principal,
            request=request,
            target_type=item["kind"],
            target_id=str(item["ref"]),
            after={"grant": str(grant.pk), "operationId": grant.operation_id},
        )
        revealed.append({"kind": item["kind"], "ref": item["ref"], "credentials": credentials})
    return revealed


def _resolve_integration(ref: dict) -> dict:
    from apps.integrations.selectors import integrations_in_scope
    from apps.integrations.services import reveal_integration

    found = integrations_in_scope(provider=ref.get("provider", ""), project=ref.get("project"))
    if not found:
        raise NotFound(f"No integration found for {ref}")
    return reveal_integration(found[0])


register_resolver("integration", _resolve_integration)

# Project platforms whose integrations can authenticate a clone, by integration provider.
_INTEGRATION_PROVIDER_OF_PLATFORM = {"github": "github", "azure-devops": "azuredevops"}


def _resolve_repository(ref: dict) -> dict:
    """A project's clone URL (https) and the Authorization header for it, from the project's
    integration (or the global one); no header when none applies (a public repository)."""
    from apps.integrations.providers import git_http_authorization
    from apps.integrations.selectors import integrations_in_scope
    from apps.projects.models import Project
    from apps.projects.remotes import https_clone_url

    project = Project.objects.filter(identifier=ref.get("project", "")).first()
    if project is None:
        raise NotFound(f"Project {ref.get('project')} is not registered")
    provider = _INTEGRATION_PROVIDER_OF_PLATFORM.get(project.platform)
    found = integrations_in_scope(provider=provider, project=project.identifier) if provider else []
    authorization = None
    if found:
        integration = found[0]
        authorization = git_http_authorization(
            integration.provider,
            integration.auth_type,
            unseal_from(integration, "credentials").value,
            integration.config,
        )
    return {"remoteUrl": https_clone_url(project.remote_url), "authorization": authorization}


register_resolver("repository", _resolve_repository)


def live_grant_for(*, operation_id: str) -> CredentialGrant | None:
    return (
        CredentialGrant.objects.filter(
            operation_id=operation_id, ended_at__isnull=True, expires_at__gt=timezone.now()
        )
        .order_by("-created_at")
        .first()
    )


def grant_redeem_local(*, grant: CredentialGrant, worker_id: str) -> list[dict]:
    """Redemption by a worker inside this server's own processes (database backend), whose
    identity is `local:<worker id>`. Same rules and audit as the HTTP redemption."""
    with transaction.atomic():
        locked = CredentialGrant.objects.select_for_update().get(pk=grant.pk)
        if locked.grantee_token_id != f"local:{worker_id}":
            raise Forbidden("This grant was issued to another worker")
        if locked.ended_at is not None or locked.expires_at <= timezone.now():
            raise Gone("Grant has ended")
        CredentialGrant.objects.filter(pk=locked.pk).update(redemptions=F("redemptions") + 1)
    revealed = []
    for item in locked.items:
        credentials = _RESOLVERS[item["kind"]](item["ref"])
        audit_event(
            "credential.read",
            target_type=item["kind"],
            target_id=str(item["ref"]),
            after={"grant": str(locked.pk), "operationId": locked.operation_id,
                   "worker": f"local:{worker_id}"},
        )  # fmt: skip
        revealed.append(item | {"credentials": credentials})
    return revealed
