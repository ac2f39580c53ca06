"""The tasks list pages by keyset: every row once, in a stable order, however deep; totals are
exact when asked for (count=true) and never a full COUNT otherwise past a small table."""

import base64
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core import pagination
from apps.tasks.models import TaskExecution
from tests.tasks.conftest import create_execution

pytestmark = pytest.mark.django_db


def _seed(user, count: int) -> list[str]:
    """`count` executions whose created_at come in threes (ties the id must break)."""
    base = timezone.now() - timedelta(hours=1)
    ids = []
    for n in range(count):
        execution = create_execution(user, status="completed")
        TaskExecution.objects.filter(pk=execution.pk).update(
            created_at=base + timedelta(seconds=n // 3)
        )
        ids.append(execution.pk)
    return ids


def _walk(client, params: dict, *, during=None) -> list[str]:
    seen, cursor = [], None
    while True:
        page = client.get("/sfp/api/tasks", params | ({"cursor": cursor} if cursor else {}))
        assert page.status_code == 200, page.content
        body = page.json()
        seen += [item["operationId"] for item in body["items"]]
        if during:
            during()
        cursor = body["nextCursor"]
        if not cursor:
            return seen


def test_cursor_walk_returns_every_row_once_in_stable_order_with_ties(owner, owner_client):
    ids = _seed(owner, 23)
    seen = _walk(owner_client, {"limit": 5})
    expected = list(
        TaskExecution.objects.order_by("-created_at", "-operation_id").values_list("pk", flat=True)
    )
    assert seen == expected
    assert sorted(seen) == sorted(ids)
    assert _walk(owner_client, {"limit": 5}) == seen  # the same order on a second walk


def test_rows_inserted_mid_walk_neither_repeat_nor_shift_a_page(owner, owner_client):
    ids = _seed(owner, 17)
    arrived = []
    seen = _walk(
        owner_client,
        {"limit": 4, "status": "completed"},
        during=lambda: arrived.append(create_execution(owner, status="completed").pk),
    )
    assert len(seen) == len(set(seen)) == 17
    assert set(seen) == set(ids)
    assert not set(arrived) & set(seen)  # newer than the cursor: the next walk's first page


def test_offset_stays_for_the_published_parameters_and_hands_over_to_a_cursor(owner, owner_client):
    _seed(owner, 10)
    everything = _walk(owner_client, {"limit": 10})
    page = owner_client.get("/sfp/api/tasks", {"limit": 3, "offset": 3}).json()
    assert [i["operationId"] for i in page["items"]] == everything[3:6]
    rest = owner_client.get("/sfp/api/tasks", {"limit": 10, "cursor": page["nextCursor"]}).json()
    assert [i["operationId"] for i in rest["items"]] == everything[6:]
    both = owner_client.get("/sfp/api/tasks", {"offset": 3, "cursor": page["nextCursor"]})
    assert both.status_code == 400


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "%%%",
        _b64(b"not json"),
        _b64(b'{"a": 1}'),
        _b64(b'["2026-01-01T00:00:00+00:00"]'),
        _b64(b'["yesterday", "abc"]'),
        _b64(b'["2026-01-01T00:00:00", "abc"]'),  # naive: no offset
        _b64(b'[true, "abc"]'),
        _b64(b'["2026-01-01T00:00:00+00:00", ["abc"]]'),
        "\u00e9t\u00e9",
    ],
)
def test_a_malformed_cursor_is_a_400_in_the_error_shape(owner_client, cursor):
    response = owner_client.get("/sfp/api/tasks", {"cursor": cursor})
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "cursor is not valid"
    assert body["details"] == {"cursor": ["Invalid."]}


def test_count_true_gives_the_exact_total(owner, owner_client):
    _seed(owner, 7)
    page = owner_client.get("/sfp/api/tasks", {"limit": 2, "count": "true"}).json()
    assert (page["total"], page["totalIsEstimate"], len(page["items"])) == (7, False, 2)
    deep = owner_client.get(
        "/sfp/api/tasks", {"limit": 2, "count": "true", "cursor": page["nextCursor"]}
    ).json()
    assert deep["total"] == 7
    filtered = owner_client.get("/sfp/api/tasks", {"status": "failed", "count": "true"}).json()
    assert filtered["total"] == 0
    assert owner_client.get("/sfp/api/tasks", {"count": "maybe"}).status_code == 400


def test_past_the_exact_bound_the_total_is_the_planners_estimate(owner, owner_client, monkeypatch):
    monkeypatch.setattr(pagination, "EXACT_UP_TO", 3)
    _seed(owner, 5)
    page = owner_client.get("/sfp/api/tasks", {"limit": 2}).json()
    assert page["totalIsEstimate"] is True
    assert page["total"] >= 4  # at least what the bounded count saw
    exact = owner_client.get("/sfp/api/tasks", {"limit": 2, "count": "true"}).json()
    assert (exact["total"], exact["totalIsEstimate"]) == (5, False)
