"""Limit/offset parameters as the published list endpoints take them, validated into a 400."""

from apps.core.exceptions import InvalidRequest

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


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
