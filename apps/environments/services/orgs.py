"""Writes of the org registry, and every reveal of a stored auth URL (each one audited).

Registration proves the auth URL with a real OAuth refresh-token exchange before anything is
written: a malformed URL or a refused connection is a 400 and the registry is unchanged.
"""

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from apps.accounts.audit import audit_event
from apps.accounts.principal import Principal
from apps.accounts.roles import PRIVILEGED, require_any
from apps.core.exceptions import InvalidRequest
from apps.environments.models import SalesforceOrg
from apps.environments.selectors.orgs import org_by_username, org_dto
from apps.integrations.salesforce import SalesforceError, connect, parse_auth_url
from apps.integrations.vault import seal_for, unseal_from


def require_credential_role(actor: Principal) -> None:
    require_any(actor, PRIVILEGED)


def _snapshot(org: SalesforceOrg) -> dict:
    return {
        "username": org.username,
        "orgId": org.org_id,
        "instanceUrl": org.instance_url,
        "isDevHub": org.is_devhub,
        "isDefault": org.is_default,
        "metadata": org.metadata,
    }


def org_register(
    *,
    actor: Principal,
    sfdx_auth_url: str,
    username: str | None = None,
    is_devhub: bool = False,
    is_default: bool = False,
    metadata: dict | None = None,
    request: HttpRequest | None = None,
) -> tuple[SalesforceOrg, bool]:
    """Validate, prove and store an org; the same username updates it. Returns (org, created)."""
    if is_default and not is_devhub:
        raise InvalidRequest(
            "Only a DevHub can be the default org (isDefault needs isDevHub)",
            details={"isDefault": ["Needs isDevHub."]},
        )
    try:
        auth = parse_auth_url(sfdx_auth_url)
        identity = connect(auth)  # outside the transaction: no lock held over the network call
    except SalesforceError as error:
        raise InvalidRequest(error.message, details={"sfdxAuthUrl": [error.message]}) from None
    if username and username.strip().lower() != identity.username.lower():
        raise InvalidRequest(
            f"The auth URL belongs to {identity.username}, not {username}",
            details={"username": ["Does not match the auth URL."]},
        )

    with transaction.atomic():
        org = (
            SalesforceOrg.objects.select_for_update()
            .filter(username__iexact=identity.username)
            .first()
        )
        created = org is None
        before = None if created else _snapshot(org)
        org = org or SalesforceOrg(username=identity.username, registered_by=actor.user.email)
        if is_default:
            SalesforceOrg.objects.filter(is_default=True).exclude(pk=org.pk).update(
                is_default=False
            )
        org.org_id = identity.org_id
        org.user_id = identity.user_id
        org.instance_url = identity.instance_url
        org.instance_name = identity.instance_name
        org.organization_type = identity.organization_type
        org.is_sandbox = identity.is_sandbox
        org.is_devhub = is_devhub
        org.is_default = is_default
        org.metadata = metadata if metadata is not None else org.metadata
        org.auth_url = seal_for(SalesforceOrg, "auth_url", auth.to_url())
        org.last_verified_at = timezone.now()
        org.save()
        audit_event(
            "org.registered" if created else "org.updated",
            principal=actor,
            request=request,
            target_type="salesforce_org",
            target_id=org.username,
            before=before,
            after=_snapshot(org),
        )
    return org, created


@transaction.atomic
def org_delete(*, actor: Principal, username: str, request: HttpRequest | None = None) -> None:
    """Forget an org (never touches the org itself)."""
    org = org_by_username(username)
    before = _snapshot(org)
    org.delete()
    audit_event(
        "org.deleted",
        principal=actor,
        request=request,
        target_type="salesforce_org",
        target_id=before["username"],
        before=before,
    )


def org_reveal_auth_url(
    *, actor: Principal, org: SalesforceOrg, request: HttpRequest | None = None
) -> str:
    """The decrypted auth URL, for owners and application tokens, audited."""
    require_credential_role(actor)
    auth_url = unseal_from(org, "auth_url").value
    audit_event(
        "credential.read",
        principal=actor,
        request=request,
        target_type="salesforce_org",
        target_id=org.username,
        after={"field": "sfdxAuthUrl"},
    )
    return auth_url


def org_test_connection(*, org: SalesforceOrg) -> dict:
    """Exchange the stored refresh token again; the credentials never leave the server."""
    auth_url = unseal_from(org, "auth_url").value
    try:
        identity = connect(parse_auth_url(auth_url))
    except SalesforceError as error:
        return {"success": False, "username": org.username, "message": error.message}
    SalesforceOrg.objects.filter(pk=org.pk).update(last_verified_at=timezone.now())
    return {
        "success": True,
        "username": identity.username,
        "orgId": identity.org_id,
        "instanceUrl": identity.instance_url,
        "organizationType": identity.organization_type,
        "message": "Connection succeeded",
    }


def resolve_org_credentials(ref: dict) -> dict:
    """Credential-grant resolver for `{"kind": "salesforce_org", "ref": {"username": …}}`."""
    org = org_by_username(ref.get("username", ""))
    return org_dto(org) | {"sfdxAuthUrl": unseal_from(org, "auth_url").value}
