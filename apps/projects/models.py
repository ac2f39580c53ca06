"""Projects: the repositories onboarded to the server, with their configuration document.

A project is keyed by its repository identifier (`owner/repo`, `org/project/repo` for Azure
DevOps, or a GitLab numeric id). Its `configuration` is a JSON document whose documented fields
are validated by `apps.projects.services`; unknown keys are kept. `version` implements optimistic
concurrency: it starts at 1 and grows by one with every change.
"""

from django.db import models


class Platform(models.TextChoices):
    GITHUB = "github", "GitHub"
    GITLAB = "gitlab", "GitLab"
    BITBUCKET = "bitbucket", "Bitbucket"
    AZURE_DEVOPS = "azure-devops", "Azure DevOps"
    OTHER = "other", "Other"


class Project(models.Model):
    """A registered repository. Created, changed and deleted only through the services."""

    identifier = models.CharField(max_length=255, unique=True)
    remote_url = models.CharField(max_length=2048, help_text="https or ssh git URL.")
    platform = models.CharField(
        max_length=16, choices=Platform.choices, help_text="Detected from the remote URL's host."
    )
    configuration = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField(default=1, help_text="Grows by one on every change.")
    created_by = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["identifier"]

    def __str__(self) -> str:
        return self.identifier
