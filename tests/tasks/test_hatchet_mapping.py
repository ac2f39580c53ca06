"""Every declaration in DECLARED maps onto Hatchet with its policy: `to_proto()` is the exact
registration the engine receives (name, action, retries, backoff, timeout, pool label, priority),
built offline from a real hatchet-sdk client configured with an unsigned test token."""

import signal

import pytest
from django.tasks import task_backends
from django.test import override_settings
from hatchet_sdk import Priority

from apps.tasks.backends.hatchet import (
    HatchetBackend,
    client_config,
    hatchet_priority,
    hatchet_task_for,
)
from apps.tasks.models import PRIORITY_VALUES
from apps.tasks.tasks import DECLARED
from tests.support.fake_hatchet import unsigned_token

HATCHET_TASKS = {
    "default": {
        "BACKEND": "apps.tasks.backends.hatchet.HatchetBackend",
        "QUEUES": ["standard", "long-running"],
    }
}


def _seconds(expression: str) -> int:
    """Hatchet's duration expressions ("90s", "30m", "4h") in seconds."""
    return int(expression[:-1]) * {"s": 1, "m": 60, "h": 3600}[expression[-1]]


@pytest.fixture(autouse=True)
def hatchet_settings():
    with override_settings(
        TASKS=HATCHET_TASKS,
        SFP_HATCHET_TOKEN=unsigned_token("127.0.0.1:7077"),
        SFP_HATCHET_HOST_PORT="",
        SFP_HATCHET_TLS_STRATEGY="none",
        SFP_HATCHET_NAMESPACE="",
    ):
        yield


def test_the_client_is_configured_from_settings():
    config = client_config()
    assert config.host_port == "127.0.0.1:7077"  # from the token's grpc_broadcast_address
    assert config.tls_config.strategy == "none"
    assert config.tenant_id
    with override_settings(SFP_HATCHET_HOST_PORT="engine:7070", SFP_HATCHET_NAMESPACE="prod"):
        config = client_config()
        assert config.host_port == "engine:7070"
        assert config.namespace == "prod_"
    assert isinstance(task_backends["default"], HatchetBackend)


@pytest.mark.parametrize("task_type", sorted(DECLARED))
def test_each_declaration_registers_with_its_policy(task_type):
    declared = DECLARED[task_type]
    proto = hatchet_task_for(declared).to_proto()
    assert proto.name == task_type
    assert proto.default_priority == Priority.LOW  # declarations use django.tasks' priority 0
    assert len(proto.tasks) == 1
    (task,) = proto.tasks
    assert task.readable_id == task_type
    assert task.action == f"{task_type}:{task_type}"
    assert task.retries == declared.retries
    assert task.backoff_factor == 2.0
    assert task.backoff_max_seconds == int(declared.backoff_max_seconds)
    assert _seconds(task.timeout) == declared.timeout_seconds + 60
    assert _seconds(task.schedule_timeout) == 24 * 3600
    assert list(task.worker_labels) == ["pool"]
    label = task.worker_labels["pool"]
    assert label.str_value == declared.queue_name
    assert label.required is True
    assert not task.is_durable
    assert list(task.parents) == []
    assert proto.cron_triggers == [] and proto.event_triggers == []


def test_a_release_stays_on_the_long_running_pool_with_no_retries():
    task = hatchet_task_for(DECLARED["release"]).to_proto().tasks[0]
    assert task.worker_labels["pool"].str_value == "long-running"
    assert task.retries == 0
    assert _seconds(task.timeout) == 4 * 3600 + 60


def test_using_a_prepared_copy_maps_to_the_same_definition():
    declared = DECLARED["build"]
    prepared = declared.using(priority=PRIORITY_VALUES["critical"])
    assert hatchet_task_for(prepared) is hatchet_task_for(declared)


def test_priorities_map_onto_hatchets_three_levels():
    assert [
        hatchet_priority(PRIORITY_VALUES[p]) for p in ("low", "medium", "high", "critical")
    ] == [
        Priority.LOW,
        Priority.MEDIUM,
        Priority.HIGH,
        Priority.HIGH,
    ]


def test_a_namespace_prefixes_names_and_actions():
    with override_settings(SFP_HATCHET_NAMESPACE="staging"):
        proto = hatchet_task_for(DECLARED["noop"]).to_proto()
    assert proto.name == "staging_noop"
    assert proto.tasks[0].action == "staging_noop:noop"


def test_a_pool_worker_serves_only_its_pool():
    backend = task_backends["default"]
    # Building a hatchet-sdk Worker installs its SIGTERM/SIGINT handlers: give pytest's back.
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)}
    try:
        worker = backend.worker_for_pool("long-running", 3, "lr-1")
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    assert worker.name == "lr-1"
    assert [(label.key, label.value) for label in worker._labels] == [("pool", "long-running")]
    assert worker._slot_config["default"] == 3  # internal, but the SDK has no public reader
    assert sorted(w.name for w in worker._workflows) == ["apextests", "pool-prepare", "release"]
