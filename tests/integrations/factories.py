"""Factories for sealed records: integrations and registered orgs, sealed with the current key."""

from apps.environments.models import SalesforceOrg
from apps.integrations.models import Integration
from apps.integrations.vault import seal_for


def sealed_integration(
    provider="github", auth_type="pat", credentials=None, **fields
) -> Integration:
    credentials = credentials or {"token": "ghp_factory_token"}
    return Integration.objects.create(
        provider=provider,
        auth_type=auth_type,
        credentials=seal_for(Integration, "credentials", credentials),
        credential_fields=sorted(credentials),
        **fields,
    )


def sealed_org(
    username="ci@acme.org",
    auth_url="force://PlatformCLI::5Aep_refresh@acme.my.salesforce.com",
    **fields,
) -> SalesforceOrg:
    return SalesforceOrg.objects.create(
        username=username,
        org_id=fields.pop("org_id", "00D000000000001AAA"),
        instance_url=fields.pop("instance_url", "https://acme.my.salesforce.com"),
        auth_url=seal_for(SalesforceOrg, "auth_url", auth_url),
        **fields,
    )
