"""Reads of environments: one by id, the filtered list, orchestration order, and their lock
states in bulk (a constant number of queries however many environments)."""

import uuid

from django.db.models import QuerySet

from apps.core.exceptions import InvalidRequest, NotFound
from apps.environments.models import Category, Environment
from apps.environments.selectors.locks import lock_states


def environment_get(environment_id) -> Environment:
    try:
        uuid.UUID(str(environment_id))
    except ValueError:
        raise NotFound(f"Environment {environment_id} not found") from None
    found = Environment.objects.select_related("project", "org").filter(pk=environment_id).first()
    if found is None:
        raise NotFound(f"Environment {environment_id} not found")
    return found


def environments_filtered(
    *,
    repository: str | None = None,
    category: str | None = None,
    is_active: bool | None = None,
    branch: str | None = None,
    tags: list[str] | None = None,
) -> list[Environment]:
    """Environments matching every given filter (tags: all must be present)."""
    found: QuerySet[Environment] = Environment.objects.select_related("project", "org").all()
    if repository:
        found = found.filter(project__identifier=repository)
    if category:
        if category not in Category.values:
            raise InvalidRequest(
                f"Unknown category {category}", details={"category": Category.values}
            )
        found = found.filter(category=category)
    if is_active is not None:
        found = found.filter(is_active=is_active)
    if branch:
        found = found.filter(branch=branch)
    wanted = set(tags or [])
    return [e for e in found if wanted <= set(e.tags)]


def environments_for_lock_any(
    *, repository: str, category: str | None = None, names: list[str] | None = None
) -> list[Environment]:
    """The active environments a lock-any request chooses among: the named ones in the order
    given (each must exist), or a category's in orchestration order."""
    found = Environment.objects.select_related("project", "org").filter(
        project__identifier=repository
    )
    if names:
        by_name = {e.name: e for e in found.filter(name__in=names)}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise NotFound(f"Environment {missing[0]} not found in {repository}")
        return [by_name[n] for n in dict.fromkeys(names)]
    return list(
        found.filter(category=category, is_active=True).order_by("orchestration_order", "name")
    )


def environment_lock_states(environments: list[Environment]) -> dict:
    """Each environment's lock state (`lock_state_dto`), keyed by environment id."""
    states = lock_states({(e.project.identifier, e.lock_resource) for e in environments})
    return {e.pk: states[(e.project.identifier, e.lock_resource)] for e in environments}


def environment_lock_state(environment: Environment) -> dict:
    return environment_lock_states([environment])[environment.pk]


def orchestration_order(*, project, category: str, include_inactive: bool) -> list[str]:
    environments = Environment.objects.filter(project=project, category=category)
    if not include_inactive:
        environments = environments.filter(is_active=True)
    return list(environments.order_by("orchestration_order", "name").values_list("name", flat=True))
