"""Reads of the org registry (metadata only; auth URLs are revealed by services, audited)."""

import json

from django.db.models import QuerySet

from apps.core.exceptions import InvalidRequest, NotFound
from apps.environments.models import SalesforceOrg


def org_by_username(username: str) -> SalesforceOrg:
    org = SalesforceOrg.objects.filter(username__iexact=(username or "").strip()).first()
    if org is None:
        raise NotFound(f"Organization {username} not found")
    return org


def parse_metadata_filter(raw: str) -> dict:
    """`k=v,k2=v2` or a JSON object, as the published list endpoint takes it."""
    raw = raw.strip()
    if raw.startswith("{"):
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            raise InvalidRequest("metadata must be k=v pairs or a JSON object")
        return parsed
    pairs = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise InvalidRequest(f"metadata filter {part!r} is not k=v")
        pairs[key] = value
    return pairs


def orgs_filtered(
    *, org_type: str | None = None, devhub: bool | None = None, metadata: dict | None = None
) -> QuerySet[SalesforceOrg]:
    orgs = SalesforceOrg.objects.all()
    if org_type:
        lowered = org_type.lower()
        if lowered == "sandbox":
            orgs = orgs.filter(is_sandbox=True)
        elif lowered == "production":
            orgs = orgs.filter(is_sandbox=False)
        else:
            orgs = orgs.filter(organization_type__iexact=org_type)
    if devhub is not None:
        orgs = orgs.filter(is_devhub=devhub)
    for key, value in (metadata or {}).items():
        orgs = orgs.filter(**{f"metadata__{key}": value})
    return orgs.order_by("username")


def default_devhub() -> SalesforceOrg | None:
    return SalesforceOrg.objects.filter(is_devhub=True, is_default=True).first()


def org_dto(org: SalesforceOrg) -> dict:
    return {
        "username": org.username,
        "instanceUrl": org.instance_url,
        "orgId": org.org_id,
        "organizationType": org.organization_type,
        "instanceName": org.instance_name,
        "isSandbox": org.is_sandbox,
        "parentProductionUsername": None,
        "isJitRegistration": False,
        "isDevHub": org.is_devhub,
        "isDefault": org.is_default,
        "metadata": org.metadata,
        "createdAt": org.created_at.isoformat(),
        "updatedAt": org.updated_at.isoformat(),
        "lastVerifiedAt": org.last_verified_at.isoformat() if org.last_verified_at else None,
    }
