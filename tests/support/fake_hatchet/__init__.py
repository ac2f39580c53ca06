"""A test-only fake Hatchet engine: real hatchet-sdk clients and workers talk gRPC to it.

Built on grpcio with the servicer base classes shipped in `hatchet_sdk/contracts/` (no protoc).
It answers what hatchet-sdk 1.43.1 calls: `v1.AdminService/PutWorkflow` and `CancelTasks`,
`Dispatcher/GetVersion` (v0.111.0), `Register`, `ListenV2` (streams `START_STEP_RUN` to a
listening worker that registered the action, whose labels satisfy the task's REQUIRED desired
labels and that has a free slot; highest priority first, then oldest), `Heartbeat`,
`SendStepActionEvent` (a `FAILED` without `should_not_retry` is re-assigned up to the task's
`retries` more times, after the event's `retry_after_ms` when it asks for one), `Unsubscribe`,
`RefreshTimeout`, `ReleaseSlot`, `UpsertWorkerLabels`, `Events/PutLog`, `PutStreamEvent`,
`Push`, and `WorkflowService/TriggerWorkflow` (what `run_no_wait`/`run(wait_for_result=False)`
call) and `ScheduleWorkflow` (a timer triggers the run when due). `cancel(run_id)` sends
`CANCEL_STEP_RUN` to the run's worker. Everything received is recorded for assertions.

Limits (what it cannot prove): no backoff timing from `backoff_factor`/`backoff_max_seconds`
(only an explicit `retry_after_ms` is honoured), no execution or schedule timeouts, no
concurrency limits or rate limits, no crons, no event-triggered runs, no DAG parents, no durable
tasks or waits, no sticky or weighted/comparator label matching (required labels: equality only),
no re-assignment of a dead worker's runs, no REST API (worker pause on SIGTERM, `hatchet.runs.*`,
`hatchet.scheduled.*` fail against it), and `GetRunDetails`/`SubscribeToWorkflowRuns` are not
served (so `run()` that waits for a result does not work). It runs in a background thread on
127.0.0.1:<free port>.
"""

from tests.support.fake_hatchet.engine import FakeHatchet, Run, unsigned_token

__all__ = ["FakeHatchet", "Run", "unsigned_token"]
