"""Reads for webhooks and the repository API: delivery listings and their DTOs."""

from django.db.models import QuerySet

from apps.builds.models import WebhookDelivery


def deliveries_list(*, repository: str | None = None, status: str | None = None) -> QuerySet:
    deliveries = WebhookDelivery.objects.select_related("project")
    if repository:
        deliveries = deliveries.filter(project__identifier=repository)
    if status:
        deliveries = deliveries.filter(status=status)
    return deliveries.order_by("-received_at", "-id")


def delivery_dto(delivery: WebhookDelivery) -> dict:
    """A delivery without its payload (payloads can be large; the admin shows them)."""
    return {
        "id": delivery.pk,
        "provider": delivery.provider,
        "deliveryId": delivery.delivery_id,
        "event": delivery.event,
        "action": delivery.action,
        "repositoryIdentifier": delivery.project.identifier,
        "status": delivery.status,
        "reason": delivery.reason,
        "branch": delivery.branch,
        "commitSha": delivery.commit_sha,
        "route": delivery.route,
        "taskId": delivery.task_operation_id or None,
        "duplicates": delivery.duplicates,
        "lastDuplicateAt": delivery.last_duplicate_at.isoformat()
        if delivery.last_duplicate_at
        else None,
        "receivedAt": delivery.received_at.isoformat(),
    }
