"""Writes for inbound webhooks: the project's signing secret, and receiving a delivery.

`github_delivery_receive` verifies the HMAC-SHA256 signature over the raw body with the project's
secret (constant-time compare) before anything is written; a forged, missing or stale (signed with
a rotated-out secret) signature raises `SignatureRejected` (401) and writes nothing. A verified
delivery is stored and its routed work (a `build` task execution) created in ONE transaction, with
the task enqueued on commit, so a 202 means both exist and a crash between them loses neither.
A redelivery (same `X-GitHub-Delivery`) is counted on the original and starts nothing, also when
two copies race: the unique constraint makes the second wait for the first and then see it.
"""

import base64
import binascii
import hashlib
import hmac
import json
import secrets

import structlog
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.builds import routing
from apps.builds.models import DeliveryProvider, DeliveryStatus, WebhookDelivery, WebhookSecret
from apps.core.exceptions import InvalidRequest, ServiceError
from apps.environments.models import SalesforceOrg
from apps.integrations.vault import seal_for, unseal_from
from apps.projects.models import Project

log = structlog.get_logger(__name__)

SIGNATURE_PREFIX = "sha256="
SECRET_BYTES = 32


class SignatureRejected(ServiceError):
    status_code = 401


def _rejected() -> SignatureRejected:
    # One message for every cause, so a caller learns nothing about which projects exist.
    return SignatureRejected("Webhook signature could not be verified")


@transaction.atomic
def webhook_secret_generate(*, project: Project) -> str:
    """A new random secret for the project's webhooks (replacing any older one); returned once."""
    secret = secrets.token_hex(SECRET_BYTES)
    sealed = seal_for(WebhookSecret, "secret", secret)
    WebhookSecret.objects.update_or_create(project=project, defaults={"secret": sealed})
    return secret


def github_signature(secret: str, body: bytes) -> str:
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _project_secret(project: Project) -> str | None:
    stored = WebhookSecret.objects.filter(project=project).first()
    return unseal_from(stored, "secret").value if stored else None


def _parse_object(body: bytes) -> dict:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidRequest("Webhook body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise InvalidRequest("Webhook body must be a JSON object")
    return payload


def github_delivery_receive(
    *, body: bytes, signature: str | None, event: str | None, delivery_id: str | None
) -> WebhookDelivery:
    """Verify, store and route one GitHub delivery; returns the delivery row (the original one
    for a redelivery, with `is_duplicate` set on the returned object)."""
    if not signature or not signature.startswith(SIGNATURE_PREFIX):
        raise _rejected()
    payload = _parse_object(body)
    repository = payload.get("repository") if isinstance(payload.get("repository"), dict) else {}
    full_name = repository.get("full_name")
    project = (
        Project.objects.filter(identifier=full_name).first() if isinstance(full_name, str) else None
    )
    secret = _project_secret(project) if project else None
    if secret is None or not hmac.compare_digest(
        github_signature(secret, body).encode(), signature.encode()
    ):
        log.warning("webhook.signature_rejected", provider="github", delivery_id=delivery_id)
        raise _rejected()
    if not delivery_id or not event:
        raise InvalidRequest("X-GitHub-Delivery and X-GitHub-Event headers are required")
    if len(delivery_id) > 100 or len(event) > 100:
        raise InvalidRequest("X-GitHub-Delivery and X-GitHub-Event are at most 100 characters")
    return _delivery_store_and_route(
        provider=DeliveryProvider.GITHUB,
        project=project,
        delivery_id=delivery_id,
        event=event,
        payload=payload,
        facts=_github_facts(event, payload, repository),
    )


# Azure DevOps service hook types → the routing table's (event, action) vocabulary.
_AZURE_EVENTS = {
    "git.push": ("push", ""),
    "git.pullrequest.created": ("pull_request", "opened"),
    "git.pullrequest.updated": ("pull_request", "synchronize"),
    "git.pullrequest.merged": ("pull_request", "closed"),
}


def azure_delivery_receive(
    *, body: bytes, authorization: str | None, repository: str | None
) -> WebhookDelivery:
    """Verify, store and route one Azure DevOps service-hook notification. The hook is set up
    with basic authentication whose password is the project's webhook secret, and a URL naming
    the repository (`?repositoryIdentifier=org/project/repo`)."""
    project = Project.objects.filter(identifier=repository).first() if repository else None
    secret = _project_secret(project) if project else None
    password = _basic_password(authorization)
    if (
        secret is None
        or password is None
        or not hmac.compare_digest(password.encode(), secret.encode())
    ):
        log.warning("webhook.signature_rejected", provider="azure-devops")
        raise _rejected()
    payload = _parse_object(body)
    notification_id = payload.get("id")
    event_type = payload.get("eventType")
    if not isinstance(notification_id, str | int) or not isinstance(event_type, str):
        raise InvalidRequest("An Azure DevOps notification needs id and eventType")
    if len(str(notification_id)) > 100 or len(event_type) > 100:
        raise InvalidRequest("id and eventType are at most 100 characters")
    return _delivery_store_and_route(
        provider=DeliveryProvider.AZURE_DEVOPS,
        project=project,
        delivery_id=str(notification_id),
        event=event_type,
        payload=payload,
        facts=_azure_facts(event_type, payload),
    )


def _basic_password(authorization: str | None) -> str | None:
    if not authorization or not authorization.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[6:], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2] or None


def _azure_facts(event_type: str, payload: dict) -> tuple[routing.EventFacts, str]:
    event, action = _AZURE_EVENTS.get(event_type, (event_type, ""))
    resource = payload.get("resource") if isinstance(payload.get("resource"), dict) else {}
    repo = resource.get("repository") if isinstance(resource.get("repository"), dict) else {}
    default_branch = str(repo.get("defaultBranch") or "").removeprefix("refs/heads/")
    branch, sha = "", ""
    updates = resource.get("refUpdates")
    if event == "push" and isinstance(updates, list) and updates and isinstance(updates[0], dict):
        ref = str(updates[0].get("name") or "")
        branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else ""
        sha = str(updates[0].get("newObjectId") or "")
    elif event == "pull_request":
        branch = str(resource.get("sourceRefName") or "").removeprefix("refs/heads/")
        commit = resource.get("lastMergeSourceCommit")
        sha = str(commit.get("commitId") or "") if isinstance(commit, dict) else ""
    return routing.EventFacts(event, action, branch, default_branch), sha


def _github_facts(event: str, payload: dict, repository: dict) -> tuple[routing.EventFacts, str]:
    action = payload.get("action") if isinstance(payload.get("action"), str) else ""
    default_branch = str(repository.get("default_branch") or "")
    branch, sha = "", ""
    if event == "push":
        ref = str(payload.get("ref") or "")
        branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else ""
        sha = str(payload.get("after") or "")
    elif event == "pull_request" and isinstance(payload.get("pull_request"), dict):
        head = payload["pull_request"].get("head") or {}
        branch = str(head.get("ref") or "") if isinstance(head, dict) else ""
        sha = str(head.get("sha") or "") if isinstance(head, dict) else ""
    return routing.EventFacts(event, action, branch, default_branch), sha


@transaction.atomic
def _delivery_store_and_route(
    *,
    provider: str,
    project: Project,
    delivery_id: str,
    event: str,
    payload: dict,
    facts: tuple[routing.EventFacts, str],
) -> WebhookDelivery:
    event_facts, sha = facts
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                provider=provider,
                delivery_id=delivery_id,
                event=event,
                action=event_facts.action[:64],
                project=project,
                status=DeliveryStatus.ACCEPTED,
                branch=event_facts.branch[:255],
                commit_sha=sha[:64],
                payload=payload,
            )
    except IntegrityError:
        return _duplicate_record(provider=provider, delivery_id=delivery_id)
    delivery.is_duplicate = False
    try:
        routes = routing.routes_for(project.configuration or {})
    except InvalidRequest as error:
        # A bad table is the project's problem, not GitHub's: keep the delivery, say why.
        routes = None
        delivery.status = DeliveryStatus.REJECTED
        delivery.reason = f"configuration.webhookRoutes is invalid: {error.message}"[:255]
    if routes is not None:
        _route(delivery, project, routes, event_facts)
    delivery.save(update_fields=["route", "reason", "status", "task_operation_id"])
    log.info(
        "webhook.accepted",
        provider=provider,
        delivery_id=delivery_id,
        github_event=event,
        project=project.identifier,
        route=delivery.route,
        task=delivery.task_operation_id,
    )
    return delivery


def _route(
    delivery: WebhookDelivery, project: Project, routes: list[dict], facts: routing.EventFacts
) -> None:
    pipeline = routing.route_match(routes, facts)
    delivery.route = pipeline or ""
    if pipeline is None:
        delivery.reason = f"stored; no route for {delivery.event}" + (
            f" ({facts.action})" if facts.action else ""
        )
    elif pipeline == "build":
        _build_for_delivery(delivery, project)
    else:
        delivery.reason = f"routed to {pipeline}; review-environment pools are not available yet"


def _duplicate_record(*, provider: str, delivery_id: str) -> WebhookDelivery:
    WebhookDelivery.objects.filter(provider=provider, delivery_id=delivery_id).update(
        duplicates=F("duplicates") + 1, last_duplicate_at=timezone.now()
    )
    original = WebhookDelivery.objects.get(provider=provider, delivery_id=delivery_id)
    original.is_duplicate = True
    log.info("webhook.duplicate", provider=provider, delivery_id=delivery_id)
    return original


# --- the `build` pipeline a delivery starts -------------------------------------------------
# Kept in one place so the task-declaration refactor (one declaration object per operation)
# only has to change these imports and `_build_execution_create`.


def _build_for_delivery(delivery: WebhookDelivery, project: Project) -> None:
    """One build per (project, branch) at a time: a later push to a branch whose build is still
    queued supersedes it (the queued one is moved to the newest commit), so two builds of one
    branch never race."""
    from apps.tasks.models import TaskExecution, TaskStatus

    dev_hubs = (project.configuration or {}).get("devHubs") or []
    if not dev_hubs:
        delivery.status = DeliveryStatus.REJECTED
        delivery.reason = "build not started: the project configures no devHubs"
        return
    devhub = dev_hubs[0]
    if not SalesforceOrg.objects.filter(username__iexact=devhub).exists():
        delivery.status = DeliveryStatus.REJECTED
        delivery.reason = f"build not started: DevHub {devhub} is not registered"
        return
    # Serialise deliveries for one branch: the check-then-create below is then race-free.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))",
            [f"build:{project.identifier}:{delivery.branch}"],
        )
    queued = (
        TaskExecution.objects.select_for_update()
        .filter(
            type="build",
            status=TaskStatus.PENDING,
            attempts=0,
            data__repository=project.identifier,
            data__branch=delivery.branch,
        )
        .first()
    )
    if queued is not None:
        TaskExecution.objects.filter(pk=queued.pk).update(
            triggered_by_id=delivery.delivery_id[:64],
            triggered_by_label=f"{delivery.provider} {delivery.event} {delivery.commit_sha[:12]}",
        )
        delivery.task_operation_id = queued.operation_id
        delivery.reason = f"coalesced into queued build {queued.operation_id}"
        return
    execution = _build_execution_create(
        repository=project.identifier, branch=delivery.branch, devhub=devhub, delivery=delivery
    )
    delivery.task_operation_id = execution.operation_id
    delivery.reason = f"build {execution.operation_id} enqueued for {delivery.commit_sha[:12]}"


def _build_execution_create(*, repository: str, branch: str, devhub: str, delivery):
    from apps.tasks.catalogue import operation
    from apps.tasks.models import Priority, TaskExecution, TriggerKind
    from apps.tasks.tasks import DECLARED

    data = operation("build").validate(
        {"repository": repository, "branch": branch, "devhub": devhub}
    )
    declared = DECLARED["build"]
    execution = TaskExecution.objects.create(
        type="build",
        data=data,
        priority=Priority.LOW,
        pool=declared.pool,
        max_attempts=declared.retries + 1,
        backoff_seconds=declared.backoff_seconds,
        backoff_max_seconds=declared.backoff_max_seconds,
        timeout_seconds=declared.timeout_seconds,
        task_path=declared.module_path,
        triggered_by_kind=TriggerKind.WEBHOOK,
        triggered_by_id=delivery.delivery_id[:64],
        triggered_by_label=f"{delivery.provider} {delivery.event} {delivery.commit_sha[:12]}",
    )
    prepared = declared.using(priority=execution.priority)
    transaction.on_commit(lambda: prepared.enqueue(execution.operation_id))
    return execution
