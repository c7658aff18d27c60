"""What ingestion accepts at most: the time range, how deep JSON may nest, and JSON read
with exact integers. Pure and light (no store): the import reader process, the
collector's Segment mapping and the CLI's options use it.

* Times (an event's ``at``, a profile's ``at``, a Segment ``timestamp`` / ``sentAt``)
  lie in :data:`EARLIEST` .. :data:`LATEST`, in UTC. A time outside that range is
  nearly always a bug upstream (a zero date, a sentinel), and the extremes (year 1 with
  a positive offset, year 9999 with a negative one) cannot even be converted to UTC.
* ``properties``, ``attributes``, and every field of a Segment message nest at most
  :data:`MAX_DEPTH` levels: an object or array is one level, ``{"a": {"b": 1}}`` two.
* :func:`loads` reads JSON as orjson does, except that integers past 64 bits stay
  exact (orjson reads them as floats: two numeric user ids 2**64 and 2**64 + 1 would
  become one customer).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from omni_journey.errors import IngestError

__all__ = [
    "EARLIEST",
    "LATEST",
    "MAX_DEPTH",
    "RANGE_TEXT",
    "check_depth",
    "check_time_range",
    "loads",
]

EARLIEST: Final = datetime(1900, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(2999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
RANGE_TEXT: Final = "1900-01-01T00:00:00Z .. 2999-12-31T23:59:59.999999Z"
MAX_DEPTH: Final = 32

# 19 digits or more may be an integer orjson cannot hold (past -2**63 .. 2**64 - 1)
_LONG_DIGITS = re.compile(rb"[0-9]{19}")
_CONTAINERS = (dict, list, tuple)


def check_time_range(value: datetime, name: str) -> datetime:
    """``value`` (aware) if it lies within the accepted range, else ``IngestError``
    (``invalid-timestamp``) naming the field, never the value."""
    if value.tzinfo is UTC:
        inside = EARLIEST <= value <= LATEST
    else:
        try:
            inside = EARLIEST <= value.astimezone(UTC) <= LATEST
        except OverflowError:  # year 1 at +05:00, year 9999 at -05:00
            inside = False
    if not inside:
        raise IngestError("invalid-timestamp", f"{name} is outside {RANGE_TEXT}")
    return value


def check_depth(value: object, name: str, limit: int = MAX_DEPTH) -> None:
    """``IngestError`` (``too-deeply-nested``) when ``value`` nests more than ``limit``
    levels of objects and arrays. Iterative: any depth is checked without recursion."""
    if not isinstance(value, _CONTAINERS):
        return
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        for child in node.values() if isinstance(node, Mapping) else node:
            if isinstance(child, _CONTAINERS):
                if depth >= limit:
                    raise IngestError(
                        "too-deeply-nested", f"{name} nests deeper than {limit} levels"
                    )
                stack.append((child, depth + 1))


def loads(data: bytes | str) -> Any:
    """JSON as orjson reads it (raises ``orjson.JSONDecodeError``), integers exact."""
    value = orjson.loads(data)
    raw = data.encode() if isinstance(data, str) else data
    if _LONG_DIGITS.search(raw) is None:
        return value
    try:  # valid JSON (orjson said so): the standard library keeps integers exact
        return json.loads(raw)
    except RecursionError:  # deeper than the standard library goes: ids past 64 bits
        return value  # are floats here, and refused as decimal numbers later
