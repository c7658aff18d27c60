"""Incremental membership: deltas, the memberships table, and entry / exit events."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, insert, select

from omni_journey.segments.evaluate import (
    SEGMENT_ENTERED,
    SEGMENT_EXITED,
    evaluate_segments,
    segment_event_id,
)
from omni_journey.spec.models import SegmentSpec
from omni_journey.store.tables import metadata

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
events = metadata.tables["events"]
memberships = metadata.tables["segment_memberships"]

VIEWERS = SegmentSpec.model_validate(
    {"key": "viewers", "match": {"event": "product.viewed", "within": "3h"}}
)
GOLD = SegmentSpec.model_validate({"key": "gold", "match": {"attribute": "tier", "equals": "gold"}})
SEGMENTS = {"viewers": VIEWERS, "gold": GOLD}


def add_customers(engine: Engine, *ids: str, **attributes: Any) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(metadata.tables["customers"]),
            [
                {"id": cid, "attributes": attributes, "created_at": NOW, "updated_at": NOW}
                for cid in ids
            ],
        )


def view(engine: Engine, cid: str, at: datetime) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(events),
            [
                {
                    "event_id": f"view-{cid}-{at.isoformat()}",
                    "name": "product.viewed",
                    "customer_id": cid,
                    "at": at,
                    "received_at": at,
                    "properties": {"sku": "A"},
                }
            ],
        )


def emitted(engine: Engine, name: str) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(events.c.customer_id, events.c.properties)
            .where(events.c.name == name)
            .order_by(events.c.seq)
        ).all()
    return [(row.customer_id, row.properties["segment"]) for row in rows]


def test_deltas_memberships_and_events(store: Engine) -> None:
    add_customers(store, "a", "b", "c")
    view(store, "a", NOW - HOUR)
    first = evaluate_segments(store, SEGMENTS, now=NOW, keys=["viewers"])["viewers"]
    assert (first.entered, first.left, first.size, first.baseline) == (["a"], [], 1, True)
    assert emitted(store, SEGMENT_ENTERED) == []  # a baseline messages nobody

    view(store, "b", NOW + HOUR)
    second = evaluate_segments(store, SEGMENTS, now=NOW + 2 * HOUR, keys=["viewers"])["viewers"]
    assert (second.entered, second.left, second.size, second.baseline) == (["b"], [], 2, False)

    third = evaluate_segments(store, SEGMENTS, now=NOW + 5 * HOUR, keys=["viewers"])["viewers"]
    assert (third.entered, third.left, third.size) == ([], ["a", "b"], 0)  # views aged out
    assert emitted(store, SEGMENT_ENTERED) == [("b", "viewers")]
    assert emitted(store, SEGMENT_EXITED) == [("a", "viewers"), ("b", "viewers")]
    with store.connect() as connection:
        assert connection.execute(select(func.count()).select_from(memberships)).scalar() == 0
        ids = set(connection.execute(select(events.c.event_id)).scalars())
    assert segment_event_id(SEGMENT_ENTERED, "viewers", "b", NOW + 2 * HOUR) in ids


def test_re_evaluating_at_the_same_time_changes_nothing(store: Engine) -> None:
    add_customers(store, "a", "b", tier="gold")
    evaluate_segments(store, SEGMENTS, now=NOW, emit_on_first=True)
    again = evaluate_segments(store, SEGMENTS, now=NOW)
    assert again["gold"].entered == again["gold"].left == []
    assert again["gold"].size == 2
    assert emitted(store, SEGMENT_ENTERED) == [("a", "gold"), ("b", "gold")]


def test_every_segment_is_evaluated_on_its_own(store: Engine) -> None:
    add_customers(store, "a", tier="gold")
    add_customers(store, "b", tier="silver")
    view(store, "b", NOW - HOUR)
    deltas = evaluate_segments(store, SEGMENTS, now=NOW)
    assert {k: d.entered for k, d in deltas.items()} == {"gold": ["a"], "viewers": ["b"]}
    with store.connect() as connection:
        rows = connection.execute(
            select(memberships.c.segment_key, memberships.c.customer_id).order_by(
                memberships.c.segment_key
            )
        ).all()
    assert [tuple(row) for row in rows] == [("gold", "a"), ("viewers", "b")]


def test_overlapping_evaluations_report_each_change_once(store: Engine) -> None:
    add_customers(store, *[f"c{n}" for n in range(50)], tier="gold")
    evaluate_segments(store, SEGMENTS, now=NOW, keys=["gold"])  # the baseline
    add_customers(store, *[f"d{n}" for n in range(50)], tier="gold")
    barrier = threading.Barrier(4)

    def run() -> list[str]:
        barrier.wait()
        return evaluate_segments(store, SEGMENTS, now=NOW + HOUR, keys=["gold"])["gold"].entered

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: run(), range(4)))
    entered = sorted(cid for found in results for cid in found)
    assert entered == sorted(f"d{n}" for n in range(50))  # once, by whichever ran first
    assert len(emitted(store, SEGMENT_ENTERED)) == 50
