"""Repository tokens for CI: `GET /sfp/api/repository/auth-token` hands a CI job a token for one
registered repository, through the provider abstraction of `apps.integrations.providers`.

With a GitHub App integration it is a short-lived installation token minted from the App's private
key (reused from the provider cache while it has five minutes or more to live); the stored
long-lived secret is handed out only when nothing short-lived can be minted (a personal access
token integration). Every issue is audited with the caller and the repository, never the token.
"""

from datetime import UTC, datetime

from django.db import transaction
from django.http import HttpRequest

from apps.accounts.audit import audit_event
from apps.accounts.principal import Principal
from apps.core.exceptions import InvalidRequest, NotFound, ServiceError
from apps.integrations import providers
from apps.integrations.models import AuthType
from apps.integrations.selectors import integrations_in_scope
from apps.integrations.vault import unseal_from
from apps.projects.models import Platform
from apps.projects.selectors import project_get


class UpstreamRefused(ServiceError):
    """The provider refused or failed to mint a token: not the caller's fault, not ours."""

    status_code = 502


class UpstreamRateLimited(ServiceError):
    status_code = 429

    def __init__(self, message: str, *, retry_after: int | None):
        super().__init__(message)
        self.retry_after = retry_after


def repository_token_issue(
    *, actor: Principal, repository: str, request: HttpRequest | None = None
) -> dict:
    """`{token, expiresAt, type, provider, scope}` for the registered repository."""
    project = project_get(repository)
    if project.platform != Platform.GITHUB:
        raise InvalidRequest(
            f"Repository tokens are issued for GitHub repositories; {repository} is "
            f"on {project.platform}"
        )
    found = integrations_in_scope(provider="github", project=project.identifier)
    # An App can mint short-lived tokens: prefer it to a long-lived PAT whenever both exist.
    found.sort(key=lambda integration: integration.auth_type != AuthType.APP)
    if not found:
        raise NotFound(f"No GitHub integration covers {repository}")
    integration = found[0]
    credentials = unseal_from(integration, "credentials").value
    if integration.auth_type == AuthType.APP:
        try:
            issued = providers.github_installation_token(credentials, integration.config)
        except providers.ProviderError as error:
            if error.kind == "rate_limited":
                raise UpstreamRateLimited(error.message, retry_after=error.retry_after) from None
            raise UpstreamRefused(error.message) from None
        body = {
            "token": issued.value,
            "expiresAt": datetime.fromtimestamp(issued.expires_at, UTC).isoformat(),
            "type": "installation",
            "provider": "github",
            "scope": "installation",
        }
    elif integration.auth_type == AuthType.PAT and credentials.get("token"):
        body = {
            "token": str(credentials["token"]),
            "expiresAt": None,
            "type": "pat",
            "provider": "github",
            "scope": "user",
        }
    else:
        raise UpstreamRefused(
            f"The GitHub integration ({integration.auth_type}) cannot issue tokens"
        )
    with transaction.atomic():
        audit_event(
            "repository.token_issued",
            principal=actor,
            request=request,
            target_type="project",
            target_id=project.identifier,
            after={"integration": str(integration.pk), "type": body["type"]},
        )
    return body
