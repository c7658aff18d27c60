"""An enrollment's context written back in bulk (``context_json``) is exactly what the
row mapping (``enrollment_row``) and the column's JSON type would store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from omni_journey.runner.records import _json_safe, context_json

MOMENTS = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
) | st.datetimes(
    min_value=datetime(1990, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.just(timezone(timedelta(hours=5, minutes=30))),
)
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | MOMENTS
)
VALUES = st.recursive(
    LEAVES,
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=5) | st.integers(0, 9), children, max_size=4)
    ),
    max_leaves=25,
)


@given(st.dictionaries(st.text(max_size=8), VALUES, max_size=6))
def test_the_bulk_context_text_means_what_the_json_column_would_store(
    context: dict[str, Any],
) -> None:
    stored_by_the_column = json.loads(json.dumps(_json_safe(context)))
    assert json.loads(context_json(context)) == stored_by_the_column


def test_datetimes_keep_their_offset_and_microseconds() -> None:
    at = datetime(2026, 5, 1, 10, 0, 0, 37, tzinfo=UTC)
    text = context_json({"at": at, "pair": (1, "a"), 3: {"n": None}})
    assert json.loads(text) == {"at": at.isoformat(), "pair": [1, "a"], "3": {"n": None}}
