"""Pagination of the list endpoints, validated into a 400.

- `limit_offset`: the limit/offset parameters the published list endpoints take.
- `keyset_page`: ours. Newest first on an indexed pair of columns, continued by an opaque cursor
  (base64 of the last row's key) and bounded by a row-value comparison, `(a, b) < (%s, %s)`, so a
  deep page costs what the first does and rows arriving mid-walk never shift or repeat a page.
- `total_requested` / `page_total`: a full COUNT only when the caller asks (`?count=true`);
  otherwise exact while small (a count bounded at EXACT_UP_TO rows) and beyond that the
  planner's estimate, which costs no scan.
"""

import base64
import binascii
import json
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import QuerySet

# Django's row-value lookups (the ones composite primary keys use; no public alias in 6.1).
from django.db.models.fields.tuple_lookups import Tuple, TupleLessThan

from apps.core.exceptions import InvalidRequest

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no", ""}


def _non_negative_int(params, name: str, default: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{name} must be an integer", details={name: ["Integer."]}) from None
    if value < 0:
        raise InvalidRequest(f"{name} must not be negative", details={name: [">= 0."]})
    return value


def limit_offset(params, *, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT):
    limit = _non_negative_int(params, "limit", default)
    if not 1 <= limit <= maximum:
        raise InvalidRequest(
            f"limit must be between 1 and {maximum}", details={"limit": [f"1..{maximum}."]}
        )
    return limit, _non_negative_int(params, "offset", 0)


def total_requested(params) -> bool:
    """`?count=true` asks for the exact total; anything but a boolean is a 400."""
    raw = str(params.get("count", "")).strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise InvalidRequest("count must be true or false", details={"count": ["Boolean."]})


def _invalid_cursor() -> InvalidRequest:
    return InvalidRequest("cursor is not valid", details={"cursor": ["Invalid."]})


@dataclass(frozen=True)
class Page:
    items: list
    next_cursor: str | None


@dataclass(frozen=True)
class Keyset:
    """Two columns that order a model newest first and together are unique (the last one is
    normally the primary key); an index on `(first, second)` serves every page."""

    first: str
    second: str

    def encode(self, row) -> str:
        values = [getattr(row, self.first), getattr(row, self.second)]
        raw = json.dumps([v.isoformat() if hasattr(v, "isoformat") else v for v in values])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def decode(self, model, cursor: str) -> tuple:
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            values = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        except (ValueError, TypeError, binascii.Error, UnicodeError):
            raise _invalid_cursor() from None
        if not isinstance(values, list) or len(values) != 2:
            raise _invalid_cursor()
        decoded = []
        for name, value in zip((self.first, self.second), values, strict=True):
            if not isinstance(value, (str, int)) or isinstance(value, bool):
                raise _invalid_cursor()
            try:
                python = model._meta.get_field(name).to_python(value)
            except (ValidationError, ValueError, TypeError, OverflowError):
                raise _invalid_cursor() from None
            if python is None or (hasattr(python, "tzinfo") and python.tzinfo is None):
                raise _invalid_cursor()
            decoded.append(python)
        return tuple(decoded)


def keyset_page(queryset: QuerySet, keyset: Keyset, *, cursor: str | None, limit: int) -> Page:
    """One page newest first after `cursor` (an opaque string from a previous page's
    `next_cursor`); `next_cursor` is None on the last page."""
    if cursor:
        after = keyset.decode(queryset.model, cursor)
        queryset = queryset.filter(TupleLessThan(Tuple(keyset.first, keyset.second), after))
    rows = list(queryset.order_by(f"-{keyset.first}", f"-{keyset.second}")[: limit + 1])
    next_cursor = keyset.encode(rows[limit - 1]) if len(rows) > limit else None
    return Page(rows[:limit], next_cursor)


EXACT_UP_TO = 1000


def page_total(queryset: QuerySet, *, exact: bool) -> tuple[int, bool]:
    """(total, is_estimate). Exact when asked for, or when a count bounded at EXACT_UP_TO + 1
    rows finds no more than that; beyond it, the planner's estimate (no scan)."""
    queryset = queryset.order_by()
    if exact:
        return queryset.count(), False
    bounded = queryset[: EXACT_UP_TO + 1].count()
    if bounded <= EXACT_UP_TO:
        return bounded, False
    return max(estimated_total(queryset), bounded), True


def estimated_total(queryset: QuerySet) -> int:
    """The planner's row estimate for the filtered query (pg_class statistics, kept by
    autovacuum's ANALYZE): no scan, so it may lag recent writes."""
    queryset = queryset.order_by()
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return queryset.count()
    sql, params = queryset.values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return max(int(plan[0]["Plan"]["Plan Rows"]), 0)
