"""`/metrics` shows the task layer moving: attempt durations and outcomes by type, retries,
queue depth per pool and status, and each worker's free and busy slots."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from apps.tasks.models import TaskExecution
from tests.tasks.conftest import submit, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def scrape(client) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_attempt_outcomes_and_retries_are_counted_by_type(owner_client, start_worker):
    before = scrape(owner_client)
    start_worker(slots=1)
    done = submit(owner_client, "noop", {}).json()["operationId"]
    retried = submit(
        owner_client, "noop", {"fail": True}, retryConfig={"maxRetries": 1, "backoffSeconds": 0}
    ).json()["operationId"]
    assert wait_for(owner_client, done)["status"] == "completed"
    assert wait_for(owner_client, retried)["status"] == "failed"
    after = scrape(owner_client)
    count = "sfp_task_attempt_duration_seconds_count"
    for outcome, runs in {"completed": 1, "pending": 1, "failed": 1}.items():
        moved = value(after, count, type="noop", outcome=outcome) - value(
            before, count, type="noop", outcome=outcome
        )
        assert moved == runs, outcome
    retries = "sfp_task_retries_total"
    assert value(after, retries, type="noop") - value(before, retries, type="noop") == 1


def test_queue_depth_follows_pending_and_active_executions(owner_client, start_worker):
    for _ in range(3):
        submit(owner_client, "noop", {})
    depth = "sfp_task_queue_depth"
    assert value(scrape(owner_client), depth, pool="standard", status="pending") == 3
    start_worker(slots=1)
    running = submit(owner_client, "noop", {"sleepSeconds": 5}).json()["operationId"]
    wait_for(owner_client, running, statuses=("active",))
    samples = scrape(owner_client)
    assert value(samples, depth, pool="standard", status="active") == 1
    assert value(samples, depth, pool="standard", status="pending") == 0
    TaskExecution.objects.filter(pk=running).update(cancel_requested=True)


def test_worker_slots_show_busy_and_free(owner_client, start_worker):
    worker = start_worker(slots=2)
    running = submit(owner_client, "noop", {"sleepSeconds": 5}).json()["operationId"]
    wait_for(owner_client, running, statuses=("active",))
    worker._write_heartbeat()
    samples = scrape(owner_client)
    slots = "sfp_worker_slots"
    assert value(samples, slots, worker_id=worker.worker_id, state="busy") == 1
    assert value(samples, slots, worker_id=worker.worker_id, state="free") == 1
    TaskExecution.objects.filter(pk=running).update(cancel_requested=True)
