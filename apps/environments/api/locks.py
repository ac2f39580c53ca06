"""The lock queue on the published `/sfp/api/locks` paths, plus ours: extending a lease, and
requests for any one free resource of a set (`/sfp/api/locks/requests/{requestId}`).

Resources are environment names (`uat`, or `env:uat`) of a registered project, or free-form
under `custom:`; anything else is a 404 or 400 naming what is wrong (`services.locks.lock_target`).
"""

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.roles import ANY_ROLE, PRIVILEGED
from apps.core.exceptions import InvalidRequest
from apps.core.validation import validated
from apps.environments.selectors import locks as lock_reads
from apps.environments.services import locks
from apps.environments.services.environments import MAX_WAIT_SECONDS

IDEMPOTENCY_HEADER = "Idempotency-Key"


class QueueLockSerializer(serializers.Serializer):
    repository = serializers.CharField(max_length=255)
    resource = serializers.CharField(max_length=255, required=False)
    resources = serializers.ListField(
        child=serializers.CharField(max_length=255),
        required=False,
        min_length=1,
        max_length=locks.MAX_SET_SIZE,
        help_text="Any one of these: granted the first free one, else the first to free up.",
    )
    leaseDurationSeconds = serializers.IntegerField(min_value=1, max_value=locks.MAX_LEASE_SECONDS)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    idempotencyKey = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text="A retry with the same key (from the same caller) gets the same ticket.",
    )
    waitTimeoutSeconds = serializers.IntegerField(
        min_value=0, max_value=MAX_WAIT_SECONDS, required=False, default=0
    )

    def validate(self, attrs):
        if ("resource" in attrs) == ("resources" in attrs):
            raise serializers.ValidationError({"resource": ["Send resource or resources (one)."]})
        return attrs


class ExtendLockSerializer(serializers.Serializer):
    leaseDurationSeconds = serializers.IntegerField(min_value=1, max_value=locks.MAX_LEASE_SECONDS)


_LOCK_FIELDS = {
    "id": serializers.IntegerField(),
    "ticketId": serializers.UUIDField(),
    "repository": serializers.CharField(),
    "resource": serializers.CharField(),
    "status": serializers.ChoiceField(
        choices=["queued", "acquired", "released", "expired", "cancelled"]
    ),
    "queuePosition": serializers.IntegerField(),
    "holder": serializers.CharField(),
    "reason": serializers.CharField(),
    "requestId": serializers.UUIDField(allow_null=True),
    "leaseStart": serializers.DateTimeField(allow_null=True),
    "leaseDurationSeconds": serializers.IntegerField(),
    "expiresAt": serializers.DateTimeField(allow_null=True),
    "expiresInSeconds": serializers.IntegerField(allow_null=True),
    "releasedAt": serializers.DateTimeField(allow_null=True),
    "releasedBy": serializers.CharField(allow_null=True),
    "createdAt": serializers.DateTimeField(),
    "updatedAt": serializers.DateTimeField(),
}
_lock = inline_serializer("LockTicket", _LOCK_FIELDS)
_locks = inline_serializer("LockTickets", _LOCK_FIELDS, many=True)

_lock_request = inline_serializer(
    "LockRequest",
    {
        "requestId": serializers.UUIDField(),
        "repository": serializers.CharField(),
        "resources": serializers.ListField(child=serializers.CharField()),
        "status": serializers.CharField(),
        "grantedResource": serializers.CharField(allow_null=True),
        "ticketId": serializers.UUIDField(allow_null=True),
        "expiresAt": serializers.DateTimeField(allow_null=True),
    },
)


def idempotency_key(request: Request, body_key: str) -> str:
    """The caller's idempotency key: the body's, else the `Idempotency-Key` header's."""
    return body_key or request.headers.get(IDEMPOTENCY_HEADER, "")


def _wait_seconds(request: Request) -> int:
    raw = request.query_params.get("waitTimeoutSeconds", "0")
    if not raw.isdigit() or int(raw) > MAX_WAIT_SECONDS:
        raise InvalidRequest(
            f"waitTimeoutSeconds must be 0..{MAX_WAIT_SECONDS}",
            details={"waitTimeoutSeconds": [f"0..{MAX_WAIT_SECONDS}."]},
        )
    return int(raw)


class LocksView(APIView):
    allowed_roles = {"POST": PRIVILEGED}

    @extend_schema(
        operation_id="MutexController_queueLock",
        summary="Queue a lock for a resource, or for any one of several (returns a ticket or a "
        "request; queued if held)",
        tags=["Locks"],
        parameters=[OpenApiParameter(IDEMPOTENCY_HEADER, str, OpenApiParameter.HEADER)],
        request=QueueLockSerializer,
        responses={201: _lock},
    )
    def post(self, request: Request) -> Response:
        data = validated(QueueLockSerializer, request.data)
        repository = data["repository"]
        holder = locks.Holder.of(request.auth)
        key = idempotency_key(request, data["idempotencyKey"])
        if "resources" in data:
            resources = [
                locks.lock_target(repository=repository, resource=r) for r in data["resources"]
            ]
            lock_request = locks.lock_request_any(
                holder=holder, repository=repository, resources=resources,
                lease_seconds=data["leaseDurationSeconds"], reason=data["reason"],
                idempotency_key=key,
            )  # fmt: skip
            if not lock_request.granted_ticket_id and data["waitTimeoutSeconds"]:
                lock_request = locks.lock_request_wait(
                    request=lock_request, seconds=data["waitTimeoutSeconds"]
                )
            return Response(lock_reads.lock_request_dto(lock_request), status=201)
        ticket = locks.lock_request(
            holder=holder, repository=repository,
            resource=locks.lock_target(repository=repository, resource=data["resource"]),
            lease_seconds=data["leaseDurationSeconds"], reason=data["reason"],
            idempotency_key=key,
        )  # fmt: skip
        if ticket.status == "queued" and data["waitTimeoutSeconds"]:
            ticket = locks.lock_wait(ticket=ticket, seconds=data["waitTimeoutSeconds"])
        return Response(lock_reads.ticket_dto(ticket), status=201)


class LockTicketView(APIView):
    allowed_roles = {"GET": ANY_ROLE, "DELETE": ANY_ROLE}

    @extend_schema(
        operation_id="MutexController_getLockStatus",
        summary="Get the status of a lock ticket",
        tags=["Locks"],
        responses={200: _lock},
    )
    def get(self, request: Request, repository: str, resource: str, ticket_id) -> Response:
        resource = locks.lock_target(repository=repository, resource=resource)
        ticket = lock_reads.lock_ticket_get(
            repository=repository, resource=resource, ticket_id=ticket_id
        )
        return Response(lock_reads.ticket_dto(ticket))

    @extend_schema(
        operation_id="MutexController_releaseLock",
        summary="Release a lock (its holder, an owner or an application token); a queued ticket "
        "is cancelled",
        tags=["Locks"],
        responses={200: _lock},
    )
    def delete(self, request: Request, repository: str, resource: str, ticket_id) -> Response:
        resource = locks.lock_target(repository=repository, resource=resource)
        ticket = locks.lock_release(
            repository=repository, resource=resource, ticket_id=ticket_id, principal=request.auth
        )
        return Response(lock_reads.ticket_dto(ticket) | {"message": "Lock released successfully"})


class LockExtendView(APIView):
    allowed_roles = {"POST": ANY_ROLE}

    @extend_schema(
        operation_id="MutexController_extendLock",
        summary="Extend a held lock: its lease runs leaseDurationSeconds from now",
        tags=["Locks"],
        request=ExtendLockSerializer,
        responses={200: _lock},
    )
    def post(self, request: Request, repository: str, resource: str, ticket_id) -> Response:
        data = validated(ExtendLockSerializer, request.data)
        resource = locks.lock_target(repository=repository, resource=resource)
        ticket = locks.lock_extend(
            repository=repository, resource=resource, ticket_id=ticket_id,
            lease_seconds=data["leaseDurationSeconds"], principal=request.auth,
        )  # fmt: skip
        return Response(lock_reads.ticket_dto(ticket))


class ResourceLocksView(APIView):
    allowed_roles = {"GET": ANY_ROLE}

    @extend_schema(
        operation_id="MutexController_getLocks",
        summary="All lock requests for a resource, in queue order (live, and ended in the last "
        "hour)",
        tags=["Locks"],
        responses={200: _locks},
    )
    def get(self, request: Request, repository: str, resource: str) -> Response:
        resource = locks.lock_target(repository=repository, resource=resource)
        tickets = lock_reads.lock_tickets_for(repository=repository, resource=resource)
        return Response(lock_reads.tickets_dto(tickets))


class LockRequestView(APIView):
    allowed_roles = {"GET": ANY_ROLE, "DELETE": ANY_ROLE}

    @extend_schema(
        operation_id="MutexController_getLockRequest",
        summary="A request for any one of several resources: which one it was granted",
        tags=["Locks"],
        parameters=[
            OpenApiParameter(
                "waitTimeoutSeconds", int, description="Wait up to this long for the grant"
            )
        ],
        responses={200: _lock_request},
    )
    def get(self, request: Request, request_id) -> Response:
        lock_request = lock_reads.lock_request_get(request_id)
        wait = _wait_seconds(request)
        if wait and not lock_request.granted_ticket_id and not lock_request.cancelled_at:
            lock_request = locks.lock_request_wait(request=lock_request, seconds=wait)
        return Response(lock_reads.lock_request_dto(lock_request))

    @extend_schema(
        operation_id="MutexController_cancelLockRequest",
        summary="End a request for any one of several resources (releases what it was granted)",
        tags=["Locks"],
        responses={200: _lock_request},
    )
    def delete(self, request: Request, request_id) -> Response:
        lock_request = locks.lock_request_cancel(request_id=request_id, principal=request.auth)
        return Response(lock_reads.lock_request_dto(lock_request))
