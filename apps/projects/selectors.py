"""Reads of projects: existence checks and lookups other apps use, and the published ProjectDto."""

from django.db.models import QuerySet

from apps.core.exceptions import NotFound
from apps.projects.models import Project


def projects_list() -> QuerySet[Project]:
    return Project.objects.order_by("identifier")


def project_exists(identifier: str) -> bool:
    return Project.objects.filter(identifier=identifier).exists()


def project_get(identifier: str) -> Project:
    """The project with exactly this identifier, or NotFound (404)."""
    project = Project.objects.filter(identifier=identifier).first()
    if project is None:
        raise NotFound(f"Project {identifier} not found")
    return project


def project_dto(project: Project) -> dict:
    """ProjectDto as published. Project-scoped integrations are not attached yet: always []."""
    return {
        "identifier": project.identifier,
        "remoteUrl": project.remote_url,
        "platform": project.platform,
        "createdAt": project.created_at.isoformat(),
        "updatedAt": project.updated_at.isoformat(),
        "version": project.version,
        "configuration": project.configuration,
        "integrations": [],
    }
