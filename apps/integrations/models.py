"""Integration records (credentials for outside services, sealed by the vault) and the
task-scoped credential grants that let a worker read exactly the credentials its task needs."""

import uuid

from django.db import models

from apps.integrations.vault import SealedField


class Provider(models.TextChoices):
    GITHUB = "github", "GitHub"
    AZUREDEVOPS = "azuredevops", "Azure DevOps"
    AZURE_DEVOPS = "azure-devops", "Azure DevOps (alias)"
    JFROG = "jfrog", "JFrog"
    GITLAB = "gitlab", "GitLab"
    NPM = "npm", "npm"
    GITHUB_PACKAGES = "github_packages", "GitHub Packages"
    JIRA = "jira", "Jira"
    AI_ANTHROPIC = "ai_anthropic", "Anthropic"
    AI_OPENAI = "ai_openai", "OpenAI"
    AI_GOOGLE = "ai_google", "Google AI"
    AI_GITHUB_COPILOT = "ai_github_copilot", "GitHub Copilot"
    AI_AMAZON_BEDROCK = "ai_amazon_bedrock", "Amazon Bedrock"
    DATADOG = "datadog", "Datadog"
    NEWRELIC = "newrelic", "New Relic"
    SPLUNK = "splunk", "Splunk"


class AuthType(models.TextChoices):
    PAT = "pat", "Personal access token"
    BASIC_AUTH = "basic_auth", "Basic auth"
    OAUTH_CLIENT_CREDENTIALS = "oauth_client_credentials", "OAuth client credentials"
    SERVICE_PRINCIPAL = "service_principal", "Service principal"
    APP = "app", "GitHub App"
    OAUTH = "oauth", "OAuth"
    API_KEY = "api_key", "API key"


class Integration(models.Model):
    """Credentials for one outside service, global or (once projects exist) project-scoped."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    provider = models.CharField(max_length=32, choices=Provider.choices)
    auth_type = models.CharField(max_length=32, choices=AuthType.choices)
    credentials = SealedField(help_text="Sealed by the vault; never shown.")
    credential_fields = models.JSONField(
        default=list, help_text="Names of the credential fields (not their values)."
    )
    is_global = models.BooleanField(default=True)
    projects = models.ManyToManyField(
        "projects.Project", blank=True, related_name="integrations", help_text="When not global."
    )
    config = models.JSONField(default=dict, blank=True)
    created_by = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider", "created_at"]

    def __str__(self) -> str:
        scope = "global" if self.is_global else "project"
        return f"{self.provider} ({self.auth_type}, {scope})"


class CredentialGrant(models.Model):
    """Permission for one worker identity to read named credentials while one task runs.

    Items are `{"kind": …, "ref": {…}}` entries resolved by the resolver registered for the kind
    (an integration by provider, a Salesforce org by username, …). The grant ends with its task,
    or at `expires_at`, whichever comes first.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    operation_id = models.CharField(max_length=64, db_index=True)
    grantee_token_id = models.CharField(
        max_length=24, help_text="Application token id of the worker allowed to redeem it."
    )
    items = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=32, blank=True)
    redemptions = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"grant {self.id} for {self.operation_id}"
