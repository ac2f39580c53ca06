"""The fake engine itself: state, assignment and the gRPC servicers (see the package docstring
for what it serves and its limits)."""

import base64
import itertools
import json
import queue
import threading
import time
import uuid
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from hatchet_sdk.contracts import (
    dispatcher_pb2,
    dispatcher_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    workflows_pb2,
    workflows_pb2_grpc,
)
from hatchet_sdk.contracts.v1 import workflows_pb2 as v1_workflows_pb2
from hatchet_sdk.contracts.v1 import workflows_pb2_grpc as v1_workflows_pb2_grpc

ENGINE_VERSION = "v0.111.0"
TENANT_ID = "00000000-0000-4000-8000-000000000001"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def unsigned_token(grpc_address: str, server_url: str = "http://127.0.0.1:9") -> str:
    """An unsigned JWT with the claims hatchet-sdk reads (it never checks the signature)."""
    claims = {"sub": TENANT_ID, "server_url": server_url, "grpc_broadcast_address": grpc_address}
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.unsigned"


@dataclass
class FakeWorker:
    id: str
    name: str
    actions: set[str]
    labels: dict[str, str | int]
    slots: int
    inbox: queue.Queue = field(default_factory=queue.Queue)
    streams: int = 0
    busy: set[str] = field(default_factory=set)


@dataclass
class Run:
    id: str
    workflow: str
    action: str
    input: dict
    priority: int
    retries: int
    required_labels: dict[str, str | int]
    order: int
    status: str = "queued"  # queued | assigned | running | completed | failed | cancelled
    retry_count: int = 0
    worker_id: str = ""
    output: dict | None = None
    error: str = ""
    events: list = field(default_factory=list)  # (event type name, retry_count, payload, …)
    assignments: list[str] = field(default_factory=list)  # worker names, one per attempt


class FakeHatchet:
    """Start with `start()` (or as a context manager); `address` is "127.0.0.1:<port>"."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.registrations: list = []  # every PutWorkflow request, in order
        self.workflows: dict[str, object] = {}  # name → latest CreateWorkflowVersionRequest
        self.workers: dict[str, FakeWorker] = {}
        self.runs: dict[str, Run] = {}
        self.logs: list = []  # PutLogRequest
        self.stream_events: list = []
        self.pushed_events: list = []
        self.calls: list[str] = []  # method names, in order
        self._order = itertools.count()
        self._timers: list[threading.Timer] = []
        self.server: grpc.Server | None = None
        self.port = 0

    # --- running ---

    def start(self) -> "FakeHatchet":
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=64))
        dispatcher_pb2_grpc.add_DispatcherServicer_to_server(_Dispatcher(self), self.server)
        events_pb2_grpc.add_EventsServiceServicer_to_server(_Events(self), self.server)
        workflows_pb2_grpc.add_WorkflowServiceServicer_to_server(_Workflows(self), self.server)
        v1_workflows_pb2_grpc.add_AdminServiceServicer_to_server(_Admin(self), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        return self

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        if self.server is not None:
            self.server.stop(grace=0.5).wait()

    def __enter__(self) -> "FakeHatchet":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def token(self) -> str:
        return unsigned_token(self.address)

    # --- for assertions ---

    def run(self, run_id: str) -> Run:
        with self.lock:
            return self.runs[run_id]

    def wait(self, predicate, timeout: float = 20.0) -> None:
        """Block until `predicate(engine)` holds (checked on every change), or fail."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("the fake Hatchet engine never reached the state")
                self.changed.wait(min(remaining, 0.2))

    def worker_named(self, name: str) -> FakeWorker | None:
        with self.lock:
            return next((w for w in self.workers.values() if w.name == name), None)

    # --- the engine's decisions ---

    def trigger(self, name: str, input_json: str, priority: int = 0, metadata: str = "") -> Run:
        with self.lock:
            workflow = self.workflows.get(name)
            if workflow is None:
                raise KeyError(name)
            task = workflow.tasks[0]
            run = Run(
                id=str(uuid.uuid4()),
                workflow=name,
                action=task.action,
                input=json.loads(input_json or "{}"),
                priority=priority or workflow.default_priority or 1,
                retries=task.retries,
                required_labels={
                    key: (label.str_value if label.HasField("str_value") else label.int_value)
                    for key, label in task.worker_labels.items()
                    if label.required
                },
                order=next(self._order),
            )
            self.runs[run.id] = run
            self._dispatch()
            return run

    def cancel(self, run_id: str) -> bool:
        """What the engine does on a cancel: a queued run ends; a running one is told to stop."""
        with self.lock:
            run = self.runs.get(run_id)
            if run is None or run.status in ("completed", "failed", "cancelled"):
                return False
            worker = self.workers.get(run.worker_id)
            if run.status in ("assigned", "running") and worker is not None:
                worker.inbox.put(self._action(run, dispatcher_pb2.CANCEL_STEP_RUN))
                worker.busy.discard(run.id)
            run.status = "cancelled"
            self._dispatch()
            return True

    def _later(self, seconds: float, fn, *args) -> None:
        timer = threading.Timer(seconds, fn, args)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _requeue(self, run_id: str) -> None:
        with self.lock:
            run = self.runs[run_id]
            if run.status == "retrying":
                run.status = "queued"
                self._dispatch()

    def _eligible(self, worker: FakeWorker, run: Run) -> bool:
        if worker.streams <= 0 or run.action not in worker.actions:
            return False
        if len(worker.busy) >= worker.slots:
            return False
        return all(
            str(worker.labels.get(key)) == str(value) for key, value in run.required_labels.items()
        )

    def _dispatch(self) -> None:
        queued = sorted(
            (r for r in self.runs.values() if r.status == "queued"),
            key=lambda r: (-r.priority, r.order),
        )
        for run in queued:
            worker = next((w for w in self.workers.values() if self._eligible(w, run)), None)
            if worker is None:
                continue
            run.status, run.worker_id = "assigned", worker.id
            run.assignments.append(worker.name)
            worker.busy.add(run.id)
            worker.inbox.put(self._action(run, dispatcher_pb2.START_STEP_RUN))
        self.changed.notify_all()

    def _action(self, run: Run, action_type) -> dispatcher_pb2.AssignedAction:
        workflow = self.workflows[run.workflow]
        return dispatcher_pb2.AssignedAction(
            tenant_id=TENANT_ID,
            workflow_run_id=run.id,
            job_id=run.workflow,
            job_name=run.workflow,
            job_run_id=run.id,
            task_id=run.action,
            task_run_external_id=run.id,
            action_id=run.action,
            action_type=action_type,
            action_payload=json.dumps({"input": run.input, "parents": {}}),
            task_name=workflow.tasks[0].readable_id,
            retry_count=run.retry_count,
            additional_metadata="{}",
            priority=run.priority,
            workflow_id=run.workflow,
            workflow_version_id=run.workflow,
        )

    def step_event(self, request) -> None:
        with self.lock:
            run = self.runs.get(request.task_run_external_id)
            if run is None:
                return
            kind = dispatcher_pb2.StepActionEventType.Name(request.event_type)
            run.events.append(
                (kind, request.retry_count, request.event_payload, request.should_not_retry,
                 request.retry_after_ms)
            )  # fmt: skip
            if run.status == "cancelled" or request.retry_count != run.retry_count:
                self.changed.notify_all()
                return
            worker = self.workers.get(run.worker_id)
            if kind == "STEP_EVENT_TYPE_STARTED":
                run.status = "running"
            elif kind == "STEP_EVENT_TYPE_COMPLETED":
                run.status = "completed"
                run.output = json.loads(request.event_payload) if request.event_payload else None
            elif kind == "STEP_EVENT_TYPE_FAILED":
                run.error = request.event_payload
                if not request.should_not_retry and run.retry_count < run.retries:
                    run.retry_count += 1
                    run.status = "retrying"
                    self._later(request.retry_after_ms / 1000, self._requeue, run.id)
                else:
                    run.status = "failed"
            if kind != "STEP_EVENT_TYPE_STARTED" and worker is not None:
                worker.busy.discard(run.id)
            self._dispatch()


def _now() -> Timestamp:
    stamp = Timestamp()
    stamp.GetCurrentTime()
    return stamp


class _Dispatcher(dispatcher_pb2_grpc.DispatcherServicer):
    def __init__(self, engine: FakeHatchet):
        self.engine = engine

    def GetVersion(self, request, context):  # noqa: N802
        self.engine.calls.append("GetVersion")
        return dispatcher_pb2.GetVersionResponse(version=ENGINE_VERSION)

    def Register(self, request, context):  # noqa: N802
        engine = self.engine
        labels = {
            key: (value.str_value if value.HasField("str_value") else value.int_value)
            for key, value in request.labels.items()
        }
        slots = sum(request.slot_config.values()) or request.slots or 100
        worker = FakeWorker(
            id=str(uuid.uuid4()),
            name=request.worker_name,
            actions=set(request.actions),
            labels=labels,
            slots=slots,
        )
        with engine.lock:
            engine.calls.append("Register")
            engine.workers[worker.id] = worker
            engine.changed.notify_all()
        return dispatcher_pb2.WorkerRegisterResponse(
            tenant_id=TENANT_ID, worker_id=worker.id, worker_name=worker.name
        )

    def ListenV2(self, request, context):  # noqa: N802
        engine = self.engine
        with engine.lock:
            engine.calls.append("ListenV2")
            worker = engine.workers.get(request.worker_id)
            if worker is None:
                context.abort(grpc.StatusCode.NOT_FOUND, "unknown worker")
            worker.streams += 1
            engine._dispatch()
        try:
            while context.is_active():
                try:
                    action = worker.inbox.get(timeout=0.2)
                except queue.Empty:
                    continue
                if not context.is_active():
                    worker.inbox.put(action)
                    break
                yield action
        finally:
            with engine.lock:
                worker.streams -= 1
                engine.changed.notify_all()

    def Heartbeat(self, request, context):  # noqa: N802
        return dispatcher_pb2.HeartbeatResponse()

    def SendStepActionEvent(self, request, context):  # noqa: N802
        self.engine.step_event(request)
        return dispatcher_pb2.ActionEventResponse(tenant_id=TENANT_ID, worker_id=request.worker_id)

    def Unsubscribe(self, request, context):  # noqa: N802
        return dispatcher_pb2.WorkerUnsubscribeResponse(
            tenant_id=TENANT_ID, worker_id=request.worker_id
        )

    def RefreshTimeout(self, request, context):  # noqa: N802
        return dispatcher_pb2.RefreshTimeoutResponse(timeout_at=_now())

    def ReleaseSlot(self, request, context):  # noqa: N802
        return dispatcher_pb2.ReleaseSlotResponse()

    def UpsertWorkerLabels(self, request, context):  # noqa: N802
        return dispatcher_pb2.UpsertWorkerLabelsResponse(
            tenant_id=TENANT_ID, worker_id=request.worker_id
        )


class _Events(events_pb2_grpc.EventsServiceServicer):
    def __init__(self, engine: FakeHatchet):
        self.engine = engine

    def PutLog(self, request, context):  # noqa: N802
        with self.engine.lock:
            self.engine.logs.append(request)
        return events_pb2.PutLogResponse()

    def PutStreamEvent(self, request, context):  # noqa: N802
        with self.engine.lock:
            self.engine.stream_events.append(request)
        return events_pb2.PutStreamEventResponse()

    def Push(self, request, context):  # noqa: N802
        with self.engine.lock:
            self.engine.pushed_events.append(request)
        return events_pb2.Event(
            tenant_id=TENANT_ID,
            event_id=str(uuid.uuid4()),
            key=request.key,
            payload=request.payload,
        )


class _Workflows(workflows_pb2_grpc.WorkflowServiceServicer):
    def __init__(self, engine: FakeHatchet):
        self.engine = engine

    def TriggerWorkflow(self, request, context):  # noqa: N802
        self.engine.calls.append("TriggerWorkflow")
        try:
            run = self.engine.trigger(
                request.name, request.input, request.priority, request.additional_metadata
            )
        except KeyError:
            context.abort(grpc.StatusCode.NOT_FOUND, f"workflow {request.name} not found")
        return workflows_pb2.TriggerWorkflowResponse(workflow_run_id=run.id)

    def ScheduleWorkflow(self, request, context):  # noqa: N802
        engine = self.engine
        engine.calls.append("ScheduleWorkflow")
        if request.name not in engine.workflows:
            context.abort(grpc.StatusCode.NOT_FOUND, f"workflow {request.name} not found")
        scheduled = []
        for when in request.schedules:
            delay = max(0.0, when.ToDatetime().timestamp() - time.time())
            engine._later(delay, engine.trigger, request.name, request.input, request.priority)
            scheduled.append(workflows_pb2.ScheduledWorkflow(id=str(uuid.uuid4()), trigger_at=when))
        return workflows_pb2.WorkflowVersion(
            id=str(uuid.uuid4()), version="fake", workflow_id=request.name,
            scheduled_workflows=scheduled,
        )  # fmt: skip


class _Admin(v1_workflows_pb2_grpc.AdminServiceServicer):
    def __init__(self, engine: FakeHatchet):
        self.engine = engine

    def PutWorkflow(self, request, context):  # noqa: N802
        with self.engine.lock:
            self.engine.calls.append("PutWorkflow")
            self.engine.registrations.append(request)
            self.engine.workflows[request.name] = request
            self.engine._dispatch()
        return v1_workflows_pb2.CreateWorkflowVersionResponse(
            id=str(uuid.uuid4()), workflow_id=request.name
        )

    def CancelTasks(self, request, context):  # noqa: N802
        cancelled = [run_id for run_id in request.external_ids if self.engine.cancel(run_id)]
        return v1_workflows_pb2.CancelTasksResponse(cancelled_tasks=cancelled)
