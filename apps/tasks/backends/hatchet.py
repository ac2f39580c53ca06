"""The Hatchet task backend: the same declarations (`apps.tasks.catalogue.OPERATIONS`) run on a
Hatchet engine with the same policy, and `apps.tasks.lifecycle` still owns every status change.

Each `SfpTask` becomes one hatchet-sdk `Standalone` (`hatchet_task_for`): name = task type,
`retries` = the declaration's retries (always explicit, even 0), exponential backoff (factor 2,
capped at the declaration's `backoff_max_seconds`; each retry also asks for the execution's own
delay, see below), `execution_timeout` = the declaration's timeout, a REQUIRED `pool` worker label
equal to its queue, and a default priority. Our four priorities map onto Hatchet's three:
low → LOW (1), medium → MEDIUM (2), high and critical → HIGH (3) (`hatchet_priority`).

`enqueue` registers the declaration with the engine once per process (so a run can be triggered
before any worker of its pool has connected), triggers it with `{"operation_id": …}` (or
schedules it for `run_after`) and stores the engine's run id in `TaskExecution.engine_run_id`.
The task function (a sync function, run in the SDK's thread pool) recycles Django connections,
calls `lifecycle.begin_engine_attempt`, then `run_attempt` (the attempt itself: credential grant,
cancellation watcher, `lifecycle.attempt(…, engine_schedules_retries=True)`), and turns the
outcome into what the engine understands: a retry is re-raised as `RetryAfterException` (chained
to the real error) carrying `lifecycle.backoff_delay` so the engine waits exactly as long as the
database backend would; a final failure is a `NonRetryableException`; a cancellation returns
`{"cancelled": True}`. Cancellation reaches a running attempt two ways, both polled by a small
thread: the engine's cancel (`ctx.is_cancelled`) and the execution's `cancel_requested` flag.
An attempt whose environment lock is held elsewhere parks the execution and ends its engine run;
the lock's hand-off starts a new run (`HatchetBackend.resume_parked`), and the Hatchet worker's
housekeeping re-checks parked executions that came due (`resume_due_parked`). Attempt numbers
are counted on the execution row, since the engine's retry count restarts in each new run.

Client settings (Django settings, read with `getattr(settings, name, default)`, filled from the
SDK's own environment variables by `sfpserver.settings.tasks_hatchet`): `SFP_HATCHET_TOKEN`
(`HATCHET_CLIENT_TOKEN`), `SFP_HATCHET_HOST_PORT` (`HATCHET_CLIENT_HOST_PORT`; default: the
token's `grpc_broadcast_address`), `SFP_HATCHET_SERVER_URL` (`HATCHET_CLIENT_SERVER_URL`; default:
the token's `server_url`), `SFP_HATCHET_TLS_STRATEGY` (`HATCHET_CLIENT_TLS_STRATEGY`: tls, mtls
or none), `SFP_HATCHET_TLS_ROOT_CA_FILE`, `SFP_HATCHET_TLS_SERVER_NAME`, `SFP_HATCHET_NAMESPACE`
(`HATCHET_CLIENT_NAMESPACE`) and `SFP_HATCHET_CANCEL_POLL_SECONDS` (how often a running attempt
reads its `cancel_requested` flag, default 1 s).
"""

import functools
import os
import threading
import time
from datetime import timedelta

import structlog
from django.conf import settings
from django.db import close_old_connections, connection
from django.tasks.backends.base import BaseTaskBackend
from django.utils import timezone
from django.utils.module_loading import import_string
from hatchet_sdk import (
    ClientConfig,
    ClientTLSConfig,
    Context,
    DesiredWorkerLabel,
    Hatchet,
    NonRetryableException,
    Priority,
)
from hatchet_sdk.connection import new_conn
from hatchet_sdk.contracts.dispatcher_pb2 import GetVersionRequest
from hatchet_sdk.contracts.dispatcher_pb2_grpc import DispatcherStub
from hatchet_sdk.contracts.v1.workflows_pb2 import CancelTasksRequest
from hatchet_sdk.contracts.v1.workflows_pb2_grpc import AdminServiceStub
from hatchet_sdk.exceptions import RetryAfterException
from hatchet_sdk.utils.api_auth import create_authorization_header
from pydantic import BaseModel

from apps.environments.selectors.locks import holds_lock_now
from apps.tasks import lifecycle, pipelines
from apps.tasks.attempts import claim_environment_lock, release_environment_lock, run_attempt
from apps.tasks.backends.base import SfpTask
from apps.tasks.backends.database import DatabaseBackend
from apps.tasks.execution import AttemptContext
from apps.tasks.models import Priority as SfpPriority
from apps.tasks.models import TaskExecution, TaskStatus

logger = structlog.get_logger("sfpserver.worker")

POOL_LABEL = "pool"
BACKOFF_FACTOR = 2.0
# How long a run may wait for a worker of its pool before the engine gives up on it. Hatchet's
# default is 5 minutes; the database backend waits forever, so this is generous.
SCHEDULE_TIMEOUT = timedelta(days=1)
HEALTH_TIMEOUT_SECONDS = 3.0
# How soon housekeeping tries again to resume a parked execution the engine refused to start.
RESUME_RETRY_SECONDS = 5.0


class OperationInput(BaseModel):
    """What every run carries: the execution to run (everything else is in the database)."""

    operation_id: str


def hatchet_priority(priority: int) -> Priority:
    """Our priority values (low 0, medium 10, high 20, critical 30) on Hatchet's 1..3 scale."""
    if priority >= SfpPriority.HIGH:
        return Priority.HIGH
    if priority >= SfpPriority.MEDIUM:
        return Priority.MEDIUM
    return Priority.LOW


# --- the client and the definitions, once per process ---------------------------------------


def client_config() -> ClientConfig:
    """The hatchet-sdk configuration from Django settings (values not set fall to the SDK)."""
    token = getattr(settings, "SFP_HATCHET_TOKEN", "") or os.environ.get("HATCHET_CLIENT_TOKEN", "")
    fields: dict = {"token": token, "namespace": getattr(settings, "SFP_HATCHET_NAMESPACE", "")}
    for name, field in (
        ("SFP_HATCHET_HOST_PORT", "host_port"),
        ("SFP_HATCHET_SERVER_URL", "server_url"),
    ):
        if value := getattr(settings, name, ""):
            fields[field] = value
    tls = {"strategy": getattr(settings, "SFP_HATCHET_TLS_STRATEGY", "tls")}
    if root_ca := getattr(settings, "SFP_HATCHET_TLS_ROOT_CA_FILE", ""):
        tls["root_ca_file"] = root_ca
    if server_name := getattr(settings, "SFP_HATCHET_TLS_SERVER_NAME", ""):
        tls["server_name"] = server_name
    return ClientConfig(**fields, tls_config=ClientTLSConfig(**tls))


class _Registry:
    """The process's Hatchet client and its Standalones, rebuilt only when the settings change."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.key: str | None = None
        self.hatchet: Hatchet | None = None
        self.standalones: dict[str, object] = {}
        self.put: set[str] = set()  # task types this process registered with the engine
        self.worker_name: str = ""
        self.in_flight: set[str] = set()

    def client(self) -> Hatchet:
        config = client_config()
        key = config.model_dump_json(
            include={"token", "host_port", "server_url", "namespace", "tls_config"}
        )
        with self.lock:
            if self.hatchet is None or key != self.key:
                self.hatchet = Hatchet(config=config)
                self.key = key
                self.standalones = {}
                self.put = set()
            return self.hatchet


_registry = _Registry()


def hatchet_client() -> Hatchet:
    return _registry.client()


def _canonical(declared: SfpTask) -> SfpTask:
    """The declaration itself, also when given a `declared.using(...)` copy of it."""
    try:
        original = import_string(declared.module_path)
    except ImportError:
        return declared
    return original if isinstance(original, SfpTask) else declared


def hatchet_task_for(declared: SfpTask):
    """The hatchet-sdk Standalone for this declaration (defined once per process and client)."""
    declared = _canonical(declared)
    hatchet = hatchet_client()
    with _registry.lock:
        standalone = _registry.standalones.get(declared.task_type)
        if standalone is None:
            standalone = _define(hatchet, declared)
            _registry.standalones[declared.task_type] = standalone
        return standalone


def _define(hatchet: Hatchet, declared: SfpTask):
    def run(input: OperationInput, ctx: Context) -> dict:
        return run_engine_attempt(declared, input.operation_id, ctx)

    run.__name__ = run.__qualname__ = declared.task_type.replace("-", "_")
    return hatchet.task(
        name=declared.task_type,
        input_validator=OperationInput,
        retries=int(declared.retries),
        backoff_factor=BACKOFF_FACTOR,
        backoff_max_seconds=int(declared.backoff_max_seconds),
        # A minute beyond the CLI's own timeout, so the runner's "Timed out" wins the race.
        execution_timeout=timedelta(
            seconds=declared.timeout_seconds + ENGINE_TIMEOUT_MARGIN_SECONDS
        ),
        schedule_timeout=SCHEDULE_TIMEOUT,
        desired_worker_labels=[
            DesiredWorkerLabel(key=POOL_LABEL, value=declared.queue_name, required=True)
        ],
        default_priority=hatchet_priority(declared.priority),
    )(run)


# --- one attempt (shared shape with apps.tasks.worker.Worker._run) ---------------------------


def _watch_cancellation(
    ctx: Context, operation_id: str, context: AttemptContext, stop: threading.Event
) -> None:
    """Turn the engine's cancel (`ctx.is_cancelled`) or the execution's `cancel_requested` flag
    into the attempt's cancel flag."""
    db_every = float(getattr(settings, "SFP_HATCHET_CANCEL_POLL_SECONDS", 1.0))
    last_db = time.monotonic()
    try:
        while not stop.wait(0.1):
            if context.cancel_event.is_set():
                continue
            if ctx.is_cancelled:
                context.cancel_event.set()
            elif time.monotonic() - last_db >= db_every:
                last_db = time.monotonic()
                if TaskExecution.objects.filter(pk=operation_id, cancel_requested=True).exists():
                    context.cancel_event.set()
    finally:
        connection.close()


def _error_message(error: BaseException | None) -> str:
    if isinstance(error, lifecycle.TaskFailed):
        return error.message
    return f"{type(error).__name__}: {error}" if error else "failed"


ENGINE_TIMEOUT_MARGIN_SECONDS = 60


def run_engine_attempt(declared: SfpTask, operation_id: str, ctx: Context) -> dict:
    """The body of every Hatchet task: one attempt, its outcome told to the engine.

    An attempt whose environment lock is held elsewhere does not wait in its slot: the execution
    is parked (`lifecycle.wait_for_lock`, with the reason) and this engine run ends; the lock's
    hand-off (or the housekeeping re-check, `resume_due_parked`) starts a new run."""
    worker_id = _registry.worker_name or f"hatchet-{os.getpid()}"
    close_old_connections()
    try:
        execution = lifecycle.begin_engine_attempt(operation_id=operation_id, worker_id=worker_id)
        if execution is None:
            return {"skipped": True}
        # Hatchet's retries are the declaration's; a run cannot ask for more attempts than that.
        execution.max_attempts = min(execution.max_attempts, int(declared.retries) + 1)
        held = claim_environment_lock(execution)
        if isinstance(held, str):
            lifecycle.wait_for_lock(operation_id, reason=held)
            if holds_lock_now(operation_id):  # handed over before it was parked
                lifecycle.wake_parked(operation_id)
            return {"parked": held}
        _registry.in_flight.add(operation_id)
        status = TaskStatus.FAILED
        try:
            outcome = run_attempt(
                execution,
                worker_id=worker_id,
                watch=functools.partial(_watch_cancellation, ctx, operation_id),
                engine_schedules_retries=True,
            )
            status = outcome.status
        finally:
            release_environment_lock(execution, held, status)
            _registry.in_flight.discard(operation_id)
    finally:
        close_old_connections()
    if execution.parent_id:
        pipelines.advance(execution.parent_id)  # the next steps start now, not at the tick
    error = outcome.extra.get("error")
    if outcome.status == TaskStatus.PENDING:
        delay = lifecycle.backoff_delay(execution, execution.attempts)
        raise RetryAfterException(_error_message(error), after=timedelta(seconds=delay)) from error
    if outcome.status == TaskStatus.FAILED:
        raise NonRetryableException(_error_message(error)) from error
    if outcome.status == TaskStatus.CANCELLED:
        return {"cancelled": True}
    return {"result": outcome.result}


def resume_due_parked() -> int:
    """Housekeeping's safety re-check: parked executions whose re-check time has come (a lost
    hand-off, or one the engine refused) get a new engine run. Returns how many."""
    due = TaskExecution.objects.filter(
        status=TaskStatus.PENDING, available_at__lte=timezone.now(), cancel_requested=False
    ).values_list("operation_id", "task_path")
    resumed = 0
    for operation_id, task_path in due:
        declared = import_string(task_path)
        backend = declared.get_backend()
        if isinstance(backend, HatchetBackend):
            resumed += backend.resume_parked(declared, operation_id)
    return resumed


def in_flight() -> int:
    """Attempts running in this process right now."""
    return len(_registry.in_flight)


# --- the backend ---------------------------------------------------------------------------


class HatchetBackend(BaseTaskBackend):
    task_class = SfpTask
    supports_defer = True
    supports_priority = True
    supports_get_result = True

    # Results are read from the execution row, exactly as on the database backend.
    get_result = DatabaseBackend.get_result
    _result = DatabaseBackend._result

    def enqueue(self, task, args, kwargs):
        self.validate_task(task)
        operation_id = args[0]
        standalone = hatchet_task_for(task)
        self._ensure_registered(task, standalone)
        payload = OperationInput(operation_id=operation_id)
        priority = hatchet_priority(task.priority)
        if task.run_after is not None and task.run_after > timezone.now():
            scheduled = standalone.schedule(task.run_after, input=payload, priority=priority)
            ids = [s.id for s in scheduled.scheduled_workflows] or [scheduled.id]
            engine_run_id = f"scheduled:{ids[0]}"
        else:
            engine_run_id = standalone.run(
                payload, wait_for_result=False, priority=priority
            ).workflow_run_id
        TaskExecution.objects.filter(pk=operation_id).update(engine_run_id=engine_run_id)
        return self._result(task, TaskExecution.objects.get(pk=operation_id))

    def resume_parked(self, task: SfpTask, operation_id: str) -> bool:
        """Start a new engine run for a parked execution whose lock was handed to it. The parking
        mark (`available_at`, unused otherwise on this backend) is taken first, so of two wakers
        only one starts a run; when the engine refuses, the mark is put back for housekeeping's
        re-check, and the caller (an unlock request, a lock release) is not disturbed."""
        taken = TaskExecution.objects.filter(
            pk=operation_id, status=TaskStatus.PENDING, available_at__isnull=False
        ).update(available_at=None)
        if not taken:
            return False
        try:
            self.enqueue(task, [operation_id], {})
        except Exception:  # any engine failure: leave it parked, re-check later
            logger.exception("task.resume_failed", operation_id=operation_id)
            TaskExecution.objects.filter(
                pk=operation_id, status=TaskStatus.PENDING, available_at__isnull=True
            ).update(available_at=timezone.now() + timedelta(seconds=RESUME_RETRY_SECONDS))
            return False
        logger.info("task.resumed", operation_id=operation_id)
        return True

    def _ensure_registered(self, task: SfpTask, standalone) -> None:
        """Put the definition to the engine once per process, so a run of a pool whose workers
        are not connected yet is accepted (and waits for them) rather than refused."""
        task_type = _canonical(task).task_type
        if task_type in _registry.put:
            return
        hatchet_client()._client.admin.put_workflow(standalone.to_proto())
        _registry.put.add(task_type)

    def _channel_stub(self, stub_class):
        config = hatchet_client().config
        return stub_class(new_conn(config, False)), create_authorization_header(config.token)

    def health_check(self) -> None:
        """Dispatcher/GetVersion: the cheapest call that proves the engine answers."""
        stub, metadata = self._channel_stub(DispatcherStub)
        response = stub.GetVersion(
            GetVersionRequest(), timeout=HEALTH_TIMEOUT_SECONDS, metadata=metadata
        )
        if not response.version:
            raise RuntimeError("the Hatchet engine answered without a version")

    def cancel_run(self, engine_run_id: str) -> bool:
        """Ask the engine to cancel a run (v1 AdminService/CancelTasks over gRPC; a standalone
        task's run id is its task id). The engine then sends CANCEL_STEP_RUN to the worker,
        which sees `ctx.is_cancelled`. Scheduled runs not yet started are deleted over REST
        (`hatchet.scheduled.delete`), which needs the engine's REST API. Returns whether the
        engine reported the run as cancelled."""
        if not engine_run_id:
            return False
        if engine_run_id.startswith("scheduled:"):
            hatchet_client().scheduled.delete(engine_run_id.removeprefix("scheduled:"))
            return True
        stub, metadata = self._channel_stub(AdminServiceStub)
        response = stub.CancelTasks(
            CancelTasksRequest(external_ids=[engine_run_id]),
            timeout=HEALTH_TIMEOUT_SECONDS * 3,
            metadata=metadata,
        )
        return engine_run_id in response.cancelled_tasks

    def worker_for_pool(self, pool: str, slots: int, name: str):
        """A hatchet-sdk Worker serving the declarations of one pool, labelled with it."""
        from apps.tasks.catalogue import OPERATIONS

        _registry.worker_name = name
        workflows = [hatchet_task_for(op.task) for op in OPERATIONS.values() if op.pool == pool]
        return hatchet_client().worker(
            name,
            slots=slots,
            # hatchet.worker() itself only takes a dict here (and then warns that dicts are
            # deprecated); the SDK's own signature wins.
            labels={POOL_LABEL: pool},
            workflows=workflows,
        )
