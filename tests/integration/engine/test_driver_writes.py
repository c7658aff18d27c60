"""The runner's inserts through the driver store exactly what the SQLAlchemy column
types would (SQLite file and PostgreSQL): new enrollments with their ids in order, and
the events journeys emit, ignoring ids seen before."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select

from omni_journey.engine.types import EnrollmentState, Entered
from omni_journey.runner.effects import EmittedEvent
from omni_journey.runner.versions import publish_versions
from omni_journey.runner.writes import emit_events, insert_enrollments
from omni_journey.store.core import ENROLLMENTS, EVENTS
from tests.integration.engine.conftest import T0, Shop, journey
from tests.integration.engine.test_driver_reads import row_to_enrollment

SPEC = journey(
    {
        "key": "cart",
        "trigger": {"event": "product.added"},
        "steps": [{"id": "mail", "type": "send", "message": "cart_reminder", "channel": "email"}],
    }
)


def _state(version_id: int, i: int) -> EnrollmentState:
    return EnrollmentState(
        id=0,
        journey_key="cart",
        version_id=version_id,
        customer_id=f"c-{i}",
        step_id="mail" if i % 2 else None,
        state="active",
        entered_at=T0 + timedelta(seconds=i, microseconds=i),
        wake_at=T0 + timedelta(hours=i) if i % 3 else None,
        holdout=i % 4 == 0,
        trigger_event_id=f"add-{i}" if i % 5 else None,
        context={"trigger": {"sku": "S-ü", "n": i, "big": 2**62}, "list": [1, 2.5, None]},
    )


def test_new_enrollments_are_stored_as_the_column_types_store_them(shop: Shop) -> None:
    with shop.engine.begin() as connection:
        version_id = publish_versions(connection, {"cart": SPEC}, T0)["cart"]
        states = [_state(version_id, i) for i in range(7)]
        stored = insert_enrollments(connection, [Entered(s, None) for s in states], T0)
        assert insert_enrollments(connection, [], T0) == []
    ids = [s.id for s in stored]
    assert ids == sorted(ids) and len(set(ids)) == 7 and all(i > 0 for i in ids)
    assert stored == [replace(s, id=i) for s, i in zip(states, ids, strict=True)]
    with shop.engine.connect() as connection:
        rows = connection.execute(select(ENROLLMENTS).order_by(ENROLLMENTS.c.id)).all()
    read = [row_to_enrollment(row) for row in rows]
    assert read == stored
    assert all(row.updated_at == T0 and row.claimed_by is None for row in rows)
    assert all(type(s.holdout) is bool for s in read)


def test_emitted_events_are_stored_once_as_the_column_types_store_them(shop: Shop) -> None:
    events = [
        EmittedEvent("journey.entered:1", "journey.entered", "c-1", T0, {"journey": "cart"}),
        EmittedEvent(
            "journey.converted:1",
            "journey.converted",
            "c-1",
            T0 + timedelta(microseconds=5),
            {"journey": "cart", "holdout": False, "event_id": "o-ü", "message": None},
        ),
    ]
    later = T0 + timedelta(hours=1)
    with shop.engine.begin() as connection:
        emit_events(connection, events, later)
        emit_events(connection, events[:1], later + timedelta(hours=1))  # seen: ignored
        emit_events(connection, [], later)
    with shop.engine.connect() as connection:
        rows = connection.execute(select(EVENTS).order_by(EVENTS.c.seq)).all()
    assert [
        (r.event_id, r.name, r.customer_id, r.at, r.properties, r.received_at) for r in rows
    ] == [(e.event_id, e.name, e.customer_id, e.at, e.properties, later) for e in events]
