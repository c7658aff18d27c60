"""Ingestion's limits, pure: the time range, nesting depth, exact ids, identity conflicts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st

from omni_journey.cli.options import parse_time
from omni_journey.collector.segment_protocol import map_batch, map_message
from omni_journey.errors import IngestError
from omni_journey.identity import derive_customer_id
from omni_journey.identity.conflicts import check_no_conflict
from omni_journey.ingest.event_rows import check_events, json_text, timestamp
from omni_journey.ingest.limits import (
    EARLIEST,
    LATEST,
    MAX_DEPTH,
    RANGE_TEXT,
    check_depth,
    loads,
)

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(st.datetimes(timezones=offsets))
def test_every_aware_time_is_accepted_exactly_when_it_lies_in_the_range(when: datetime) -> None:
    try:
        inside = EARLIEST <= when.astimezone(UTC) <= LATEST
    except OverflowError:
        inside = False
    for value in (when, when.isoformat()):
        if inside:
            assert timestamp(value, "at") == when
        else:
            with pytest.raises(IngestError) as refused:
                timestamp(value, "at")
            assert (refused.value.reason, refused.value.detail) == (
                "invalid-timestamp",
                f"at is outside {RANGE_TEXT}",  # the same text whatever the value
            )


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"])
@pytest.mark.parametrize("sqlite", [True, False])
def test_times_that_overflow_utc_are_rejects_not_crashes(when: str, sqlite: bool) -> None:
    records = [
        {"id": "e-1", "name": "x", "customer_id": "c", "at": when},
        {"id": "e-2", "name": "x", "customer_id": "c", "at": "2026-05-01T10:00:00Z"},
    ]
    checked = check_events(records, "DE", sqlite)
    assert checked.event_ids == ["e-2"]
    assert [(r.index, r.reason) for r in checked.rejected] == [(0, "invalid-timestamp")]


def _nested(levels: int) -> Any:
    value: Any = "leaf"
    for level in range(levels):
        value = {"k": value} if level % 2 else [value]
    return value


@given(st.integers(min_value=0, max_value=300))
def test_depth_is_checked_at_exactly_the_limit(levels: int) -> None:
    properties = {"x": _nested(levels)}  # levels + 1 deep
    if levels + 1 <= MAX_DEPTH:
        assert orjson.loads(json_text(properties, "properties")) == properties
    else:
        with pytest.raises(IngestError) as refused:
            json_text(properties, "properties")
        assert refused.value.reason == "too-deeply-nested"


def test_depth_is_checked_without_recursion() -> None:
    with pytest.raises(IngestError, match="too-deeply-nested"):
        check_depth(_nested(100_000), "properties")
    check_depth("scalar", "properties")


def test_a_segment_message_nested_past_the_limit_is_refused_before_hashing() -> None:
    message = {"type": "track", "event": "x", "userId": "u", "context": {"x": _nested(2000)}}
    with pytest.raises(IngestError) as refused:
        map_message(message, received_at=NOW)
    assert refused.value.reason == "too-deeply-nested"
    good = {"type": "track", "event": "x", "userId": "u", "properties": _nested(MAX_DEPTH)}
    assert map_message(good, received_at=NOW).record["id"].startswith("seg-")
    items = map_batch({"batch": [message, good]}, received_at=NOW)
    assert isinstance(items[0], IngestError) and not isinstance(items[1], IngestError)


integers = st.one_of(
    st.integers(min_value=2**63 - 10, max_value=2**200),
    st.integers(min_value=-(2**200), max_value=-(2**63) + 10),
    st.integers(),
)


@given(integers, integers)
def test_numeric_ids_stay_exact_and_distinct(a: int, b: int) -> None:
    first_item = f'{{"userId": {a}, "type": "track", "event": "x"}}'
    second_item = f'{{"userId": {b}, "type": "track", "event": "x", "properties": {{"n": {a}}}}}'
    body = f'{{"batch": [{first_item}, {second_item}]}}'
    payload = loads(body.encode())
    mapped = map_batch(payload, received_at=NOW)
    first, second = (item.record["customer_id"] for item in mapped)  # type: ignore[union-attr]
    assert (first, second) == (str(a), str(b))
    assert (first == second) == (a == b)
    # and properties keep what they held: the number, exactly
    properties = mapped[1].record["properties"]  # type: ignore[union-attr]
    assert json.loads(json_text(properties, "properties")) == {"n": a}


@pytest.mark.parametrize("raw", ["1.5", "1e20", "18446744073709551616.0", "-0.0"])
def test_decimal_ids_are_refused_on_every_path(raw: str) -> None:
    payload = loads(f'{{"userId": {raw}, "type": "track", "event": "x"}}'.encode())
    with pytest.raises(IngestError) as refused:
        map_message(payload, received_at=NOW)
    assert refused.value.reason == "invalid-id" and raw not in refused.value.detail
    event = {"id": "e", "name": "x", "at": "2026-05-01T10:00:00Z", "customer_id": float(raw)}
    rejected = check_events([event], "DE", sqlite=True).rejected
    assert [r.reason for r in rejected] == ["invalid-id"]


def test_loads_reads_what_orjson_reads() -> None:
    text = b'{"a": [1, 2.5, "x", null, true], "b": {"c": 18446744073709551615}}'
    assert loads(text) == orjson.loads(text)
    with pytest.raises(orjson.JSONDecodeError):
        loads(b'{"a": 12345678901234567890123,')


def test_only_two_customers_known_by_their_own_ids_conflict() -> None:
    anonymous = derive_customer_id(("anonymous_id", "a-1"))
    check_no_conflict("c-1", [("customer_id", "c-1"), ("anonymous_id", anonymous)])
    check_no_conflict(None, [("email", "c-1"), ("phone", None), ("anonymous_id", anonymous)])
    check_no_conflict(anonymous, [("email", "c-1")])
    with pytest.raises(IngestError) as refused:
        check_no_conflict("c-2", [("customer_id", None), ("email", "c-1"), ("phone", "c-1")])
    assert refused.value.reason == "identity-conflict"
    assert refused.value.detail.startswith("email and phone already belong")
    with pytest.raises(IngestError, match="identity-conflict"):
        check_no_conflict(None, [("email", "c-1"), ("phone", "c-2")])


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"])
def test_time_options_of_the_commands_take_the_same_range(when: str) -> None:
    with pytest.raises(typer.BadParameter, match="1900-01-01"):
        parse_time(when)
    assert parse_time("2026-05-01T10:00Z") == datetime(2026, 5, 1, 10, tzinfo=UTC)
