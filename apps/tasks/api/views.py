"""Tasks and logs on the published paths. Each view declares its roles; services do the work."""

from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.roles import ANY_ROLE, LOG_READERS, OWNER, PRIVILEGED
from apps.core.exceptions import InvalidRequest, NotFound
from apps.core.pagination import limit_offset, page_total, total_requested
from apps.core.validation import validated
from apps.tasks import lifecycle, selectors, services
from apps.tasks.catalogue import OPERATIONS
from apps.tasks.models import PRIORITY_VALUES, Priority, ScheduleType, TaskStatus


class SubmitTaskSerializer(serializers.Serializer):
    type = serializers.CharField(
        max_length=64, help_text="One of: " + ", ".join(sorted(OPERATIONS))
    )
    data = serializers.JSONField()
    priority = serializers.ChoiceField(choices=list(PRIORITY_VALUES), default=Priority.LOW.label)
    scheduleType = serializers.ChoiceField(
        choices=ScheduleType.choices, default=ScheduleType.IMMEDIATE
    )
    scheduledFor = serializers.DateTimeField(required=False)
    retryConfig = serializers.DictField(required=False)
    recurrenceConfig = serializers.DictField(required=False)
    lockDuration = serializers.IntegerField(required=False, min_value=1000, default=300000)


def task_data_serializers() -> dict[str, type[serializers.Serializer]]:
    """Each task type and the serializer its `data` must satisfy: the one place the document
    reads the catalogue, so a change to the catalogue's declarations is adapted here only."""
    return {name: declared.input_serializer for name, declared in OPERATIONS.items()}


def submit_task_request() -> PolymorphicProxySerializer:
    """The submit body as one schema per task type, discriminated by `type`."""
    per_type = {}
    for name, data_serializer in task_data_serializers().items():
        component = "SubmitTask" + name[0].upper() + name[1:]
        per_type[name] = type(
            component,
            (SubmitTaskSerializer,),
            {"type": serializers.ChoiceField(choices=[name]), "data": data_serializer()},
        )
    return PolymorphicProxySerializer(
        component_name="SubmitTask", serializers=per_type, resource_type_field_name="type"
    )


class TaskStatusSerializer(serializers.Serializer):
    operationId = serializers.CharField()
    type = serializers.CharField()
    status = serializers.ChoiceField(choices=TaskStatus.choices)
    progress = serializers.IntegerField()
    currentStep = serializers.CharField(allow_null=True)
    error = serializers.DictField(allow_null=True)
    attempts = serializers.IntegerField()


class TasksView(APIView):
    allowed_roles = {"GET": ANY_ROLE, "POST": ANY_ROLE}

    @extend_schema(
        operation_id="TasksController_submitTask",
        summary="Submit a new task (one-time or delayed)",
        tags=["Tasks"],
        request=submit_task_request(),
        responses={
            201: inline_serializer(
                "TaskResponse",
                {
                    "operationId": serializers.CharField(),
                    "type": serializers.CharField(),
                    "live": inline_serializer(
                        "TaskLiveChannel",
                        {
                            "url": serializers.CharField(help_text="The WebSocket to open."),
                            "subscribe": serializers.DictField(
                                help_text="The message that follows this task on it."
                            ),
                        },
                        help_text="Where to follow the task live (see apps/live/events.py).",
                    ),
                },
            )
        },
    )
    def post(self, request: Request) -> Response:
        data = validated(SubmitTaskSerializer, request.data)
        execution = services.task_submit(
            actor=request.auth,
            type=data["type"],
            data=data["data"],
            priority=data["priority"],
            schedule_type=data["scheduleType"],
            scheduled_for=data.get("scheduledFor"),
            retry_config=data.get("retryConfig"),
            recurrence_config=data.get("recurrenceConfig"),
            request=request._request,
        )
        return Response(
            {
                "operationId": execution.operation_id,
                "type": execution.type,
                # As documented for the published server: the task id and its live channel.
                "live": {
                    "url": "/sfp/ws",
                    "subscribe": {"action": "subscribe", "object": "task",
                                  "id": execution.operation_id, "since": 0},
                },
            },
            status=201,
        )  # fmt: skip

    @extend_schema(
        operation_id="TasksController_listTasks",
        summary="List task executions, newest first",
        tags=["Tasks"],
        parameters=[
            OpenApiParameter("status", str, enum=TaskStatus.values),
            OpenApiParameter("type", str),
            OpenApiParameter("triggeredBy", str, description="Email, token name or id"),
            OpenApiParameter("limit", int),
            OpenApiParameter("offset", int, description="Published paging; prefer cursor"),
            OpenApiParameter("cursor", str, description="nextCursor of the previous page"),
            OpenApiParameter("count", bool, description="true: total is an exact COUNT"),
        ],
        responses={
            200: inline_serializer(
                "TaskList",
                {
                    "items": serializers.ListField(child=serializers.DictField()),
                    "total": serializers.IntegerField(
                        help_text="Exact with count=true or up to 1000 rows; else estimated"
                    ),
                    "totalIsEstimate": serializers.BooleanField(),
                    "limit": serializers.IntegerField(),
                    "offset": serializers.IntegerField(),
                    "nextCursor": serializers.CharField(
                        allow_null=True, help_text="Pass as cursor for the next page"
                    ),
                },
            )
        },
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        status = params.get("status") or None
        if status and status not in TaskStatus.values:
            raise InvalidRequest(f"Unknown status {status}", details={"status": TaskStatus.values})
        limit, offset = limit_offset(params)
        exact = total_requested(params)
        executions = selectors.executions_filtered(
            status=status, type=params.get("type") or None, triggered_by=params.get("triggeredBy")
        )
        page = selectors.executions_page(
            executions, cursor=params.get("cursor") or None, offset=offset, limit=limit
        )
        total, is_estimate = page_total(executions, exact=exact)
        return Response(
            {
                "items": [selectors.execution_dto(e) for e in page.items],
                "total": total,
                "totalIsEstimate": is_estimate,
                "limit": limit,
                "offset": offset,
                "nextCursor": page.next_cursor,
            }
        )


class TaskView(APIView):
    allowed_roles = {"DELETE": ANY_ROLE}

    @extend_schema(
        operation_id="TasksController_cancelTask",
        summary="Cancel a pending or active task (and its children)",
        tags=["Tasks"],
        responses={
            200: inline_serializer(
                "CancelTaskResponse",
                {"message": serializers.CharField(), "status": serializers.CharField()},
            )
        },
    )
    def delete(self, request: Request, operation_id: str) -> Response:
        execution = selectors.execution_get(operation_id)
        status = services.task_cancel(
            actor=request.auth, execution=execution, request=request._request
        )
        message = (
            "Task cancelled successfully"
            if status == TaskStatus.CANCELLED
            else "Cancellation requested: the task stops at its next check"
        )
        return Response({"message": message, "status": status})


class TaskStatusView(APIView):
    allowed_roles = {"GET": ANY_ROLE}

    @extend_schema(
        operation_id="TasksController_getTaskStatus",
        summary="Get task status",
        tags=["Tasks"],
        responses={200: TaskStatusSerializer},
    )
    def get(self, request: Request, operation_id: str) -> Response:
        return Response(selectors.status_dto(selectors.execution_get(operation_id)))


class TaskResultView(APIView):
    allowed_roles = {"GET": ANY_ROLE}

    @extend_schema(
        operation_id="TasksController_getTaskResult",
        summary="Get task result",
        tags=["Tasks"],
        responses={
            200: inline_serializer(
                "TaskResult",
                {
                    "status": serializers.CharField(),
                    "progress": serializers.IntegerField(),
                    "error": serializers.DictField(allow_null=True),
                    "result": serializers.DictField(allow_null=True),
                    "attemptHistory": serializers.ListField(child=serializers.DictField()),
                },
            )
        },
    )
    def get(self, request: Request, operation_id: str) -> Response:
        execution = selectors.execution_get(operation_id)
        latest = selectors.latest_recurring_instance(execution)
        if latest is not None:  # a recurring task's result is its latest run's
            return Response(selectors.result_dto(latest))
        return Response(selectors.result_dto(execution))


class StopRecurringView(APIView):
    allowed_roles = {"POST": PRIVILEGED}

    @extend_schema(
        operation_id="TasksController_stopRecurringTask",
        summary="Stop a recurring task (no further runs)",
        tags=["Tasks"],
        request=None,
        responses={
            200: inline_serializer(
                "StopRecurringTaskResponse",
                {"message": serializers.CharField(), "operationId": serializers.CharField()},
            )
        },
    )
    def post(self, request: Request, operation_id: str) -> Response:
        execution = selectors.execution_get(operation_id)
        services.task_stop_recurring(
            actor=request.auth, execution=execution, request=request._request
        )
        return Response({"message": "Recurring task stopped", "operationId": operation_id})


class RecurringInstancesView(APIView):
    allowed_roles = {"GET": ANY_ROLE}

    @extend_schema(
        operation_id="TasksController_getRecurringInstances",
        summary="List the runs of a recurring task, newest first",
        tags=["Tasks"],
        parameters=[OpenApiParameter("limit", int), OpenApiParameter("offset", int)],
        responses={
            200: inline_serializer(
                "RecurringInstances",
                {
                    "items": serializers.ListField(child=serializers.DictField()),
                    "total": serializers.IntegerField(),
                },
            )
        },
    )
    def get(self, request: Request, operation_id: str) -> Response:
        execution = selectors.execution_get(operation_id)
        limit, offset = limit_offset(request.query_params)
        instances = execution.recurring_instances.order_by("-created_at")
        return Response(
            {
                "items": [selectors.execution_dto(i) for i in instances[offset : offset + limit]],
                "total": instances.count(),
            }
        )


class LogsView(APIView):
    allowed_roles = {"GET": LOG_READERS, "DELETE": PRIVILEGED}

    @extend_schema(
        operation_id="LogsController_getLogs",
        summary="Get logs by operation ID (chronological)",
        tags=["Logs"],
        parameters=[OpenApiParameter("from", str), OpenApiParameter("to", str)],
        responses={
            200: inline_serializer(
                "Logs",
                {
                    "operationId": serializers.CharField(),
                    "logs": serializers.ListField(child=serializers.DictField()),
                },
            )
        },
    )
    def get(self, request: Request, operation_id: str) -> Response:
        execution = selectors.execution_get(operation_id)
        bounds = validated(
            _LogBounds, {k: v for k, v in request.query_params.items() if k in ("from", "to")}
        )
        lines = list(
            selectors.log_lines(execution, since=bounds.get("from"), until=bounds.get("to"))
        )
        if not lines:
            raise NotFound("No logs found for operation")
        return Response(
            {
                "operationId": operation_id,
                "logs": [lifecycle.log_line_dto(line) for line in lines],
            }
        )

    @extend_schema(
        operation_id="LogsController_deleteLogs",
        summary="Delete logs by operation ID",
        tags=["Logs"],
        responses={200: inline_serializer("DeleteLogs", {"deleted": serializers.IntegerField()})},
    )
    def delete(self, request: Request, operation_id: str) -> Response:
        execution = selectors.execution_get(operation_id)
        deleted = services.task_logs_delete(
            actor=request.auth, execution=execution, request=request._request
        )
        return Response({"deleted": deleted})


class _LogBounds(serializers.Serializer):
    def get_fields(self):
        return {
            "from": serializers.DateTimeField(required=False),
            "to": serializers.DateTimeField(required=False),
        }


# --- pipelines ------------------------------------------------------------------------------


class SubmitPipelineSerializer(serializers.Serializer):
    type = serializers.CharField(max_length=64)
    data = serializers.JSONField()
    priority = serializers.ChoiceField(choices=list(PRIORITY_VALUES), default=Priority.LOW.label)


class GateDecisionSerializer(serializers.Serializer):
    step = serializers.CharField(max_length=128, required=False)
    comment = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class RetryStepSerializer(serializers.Serializer):
    step = serializers.CharField(max_length=128)


def _pipeline(operation_id: str):
    from apps.tasks.pipelines import PIPELINE_PREFIX

    execution = selectors.execution_get(operation_id)
    if not execution.type.startswith(PIPELINE_PREFIX):
        raise NotFound(f"Pipeline {operation_id} not found")
    return execution


def _pipeline_dto(execution) -> dict:
    from apps.tasks.pipelines import steps_dto

    return selectors.execution_dto(execution) | {"steps": steps_dto(execution)}


_pipeline_response = inline_serializer(
    "Pipeline",
    {
        "operationId": serializers.CharField(),
        "status": serializers.CharField(),
        "steps": serializers.ListField(child=serializers.DictField()),
    },
)


class PipelinesView(APIView):
    allowed_roles = {"POST": PRIVILEGED}

    @extend_schema(
        operation_id="PipelinesController_submit",
        summary="Start a pipeline (e.g. release: dry run, approval per target, deploy)",
        tags=["Pipelines"],
        request=SubmitPipelineSerializer,
        responses={
            201: inline_serializer(
                "PipelineSubmitted",
                {"operationId": serializers.CharField(), "type": serializers.CharField()},
            )
        },
    )
    def post(self, request: Request) -> Response:
        data = validated(SubmitPipelineSerializer, request.data)
        parent = services.pipeline_submit(
            actor=request.auth,
            type=data["type"],
            data=data["data"],
            priority=data["priority"],
            request=request._request,
        )
        return Response({"operationId": parent.operation_id, "type": parent.type}, status=201)


class PipelineView(APIView):
    allowed_roles = {"GET": ANY_ROLE}

    @extend_schema(
        operation_id="PipelinesController_get",
        summary="A pipeline with the state of each step",
        tags=["Pipelines"],
        responses={200: _pipeline_response},
    )
    def get(self, request: Request, operation_id: str) -> Response:
        return Response(_pipeline_dto(_pipeline(operation_id)))


class PipelineGateView(APIView):
    allowed_roles = {"POST": OWNER}
    approve = True

    @extend_schema(
        summary="Decide the approval gate a pipeline waits at",
        tags=["Pipelines"],
        request=GateDecisionSerializer,
        responses={200: _pipeline_response},
    )
    def post(self, request: Request, operation_id: str) -> Response:
        parent = _pipeline(operation_id)
        data = validated(GateDecisionSerializer, request.data)
        services.pipeline_decide(
            actor=request.auth,
            parent=parent,
            step=data.get("step"),
            approved=self.approve,
            comment=data["comment"],
            request=request._request,
        )
        return Response(_pipeline_dto(selectors.execution_get(operation_id)))


class PipelineApproveView(PipelineGateView):
    approve = True

    @extend_schema(
        operation_id="PipelinesController_approve",
        summary="Approve the waiting gate",
        tags=["Pipelines"],
        request=GateDecisionSerializer,
        responses={200: _pipeline_response},
    )
    def post(self, request: Request, operation_id: str) -> Response:
        return super().post(request, operation_id)


class PipelineRejectView(PipelineGateView):
    approve = False

    @extend_schema(
        operation_id="PipelinesController_reject",
        summary="Reject the waiting gate (the pipeline fails)",
        tags=["Pipelines"],
        request=GateDecisionSerializer,
        responses={200: _pipeline_response},
    )
    def post(self, request: Request, operation_id: str) -> Response:
        return super().post(request, operation_id)


class PipelineRetryView(APIView):
    allowed_roles = {"POST": PRIVILEGED}

    @extend_schema(
        operation_id="PipelinesController_retryStep",
        summary="Retry a failed step alone (completed steps are not redone)",
        tags=["Pipelines"],
        request=RetryStepSerializer,
        responses={200: _pipeline_response},
    )
    def post(self, request: Request, operation_id: str) -> Response:
        parent = _pipeline(operation_id)
        data = validated(RetryStepSerializer, request.data)
        services.pipeline_retry_step(
            actor=request.auth, parent=parent, step=data["step"], request=request._request
        )
        return Response(_pipeline_dto(selectors.execution_get(operation_id)))
