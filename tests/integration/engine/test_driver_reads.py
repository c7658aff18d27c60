"""The runner's hot reads through the driver give exactly what the SQLAlchemy column
types give (SQLite file and PostgreSQL): timestamps as aware UTC datetimes, JSON as
the same values (big integers, unicode, nesting), the same order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select

from omni_journey.engine.types import EnrollmentState, EventView
from omni_journey.runner.reads import events_after
from omni_journey.store.core import EVENTS
from tests.integration.engine.conftest import T0, Shop, event


# The reference: the same rows read through SQLAlchemy's column types.
def row_to_event(row: Any) -> EventView:
    return EventView(
        event_id=row.event_id,
        name=row.name,
        customer_id=row.customer_id,
        at=row.at,
        properties=dict(row.properties or {}),
        seq=row.seq,
    )


def row_to_enrollment(row: Any) -> EnrollmentState:
    return EnrollmentState(
        id=row.id,
        journey_key=row.journey_key,
        version_id=row.journey_version_id,
        customer_id=row.customer_id,
        step_id=row.step_id,
        state=row.state,
        entered_at=row.entered_at,
        wake_at=row.wake_at,
        holdout=row.holdout,
        trigger_event_id=row.trigger_event_id,
        context=dict(row.context or {}),
        ended_at=row.ended_at,
        end_reason=row.end_reason,
    )


def test_events_read_through_the_driver_equal_the_column_types_reading(shop: Shop) -> None:
    tokyo = timezone(timedelta(hours=9))
    records = [
        event("e1", "product.viewed", "ana", T0, sku="SERUM-30", price=24.5),
        event("e2", "order.completed", "ana", T0 + timedelta(microseconds=7), total=2**53 + 1),
        event("e3", "product.viewed", "ben", datetime(2026, 5, 4, 19, 0, 1, tzinfo=tokyo)),
        event("e4", "cart.viewed", "ben", T0, nested={"a": [1, {"b": "ü €"}]}, empty={}),
        event("e5", "product.viewed", "cy", datetime(1999, 12, 31, 23, 59, 59, 999999, UTC)),
    ]
    shop.events(records)
    names = {"product.viewed", "order.completed", "cart.viewed"}
    with shop.engine.connect() as connection:
        through_driver = events_after(connection, 0, names, 10)
        rows = connection.execute(
            select(EVENTS).where(EVENTS.c.name.in_(sorted(names))).order_by(EVENTS.c.seq)
        ).all()
        limited = events_after(connection, through_driver[1].seq, {"product.viewed"}, 1)
    assert through_driver == [row_to_event(row) for row in rows]
    assert [e.event_id for e in through_driver] == ["e1", "e2", "e3", "e4", "e5"]
    assert all(e.at.tzinfo is UTC for e in through_driver)
    assert through_driver[1].properties["total"] == 2**53 + 1
    assert [e.event_id for e in limited] == ["e3"]


def test_enrollments_read_through_the_driver_equal_the_column_types_reading(shop: Shop) -> None:
    from omni_journey.runner.passes import JourneyRunner
    from omni_journey.runner.reads import active_enrollments, awaiting_goal, due_enrollments
    from omni_journey.store.core import ENROLLMENTS
    from tests.integration.engine.conftest import journey, profile

    spec = journey(
        {
            "key": "cart",
            "trigger": {"event": "product.added"},
            "goal": {"event": "order.completed", "within": "3d"},
            "holdout": "50%",
            "steps": [
                {"id": "wait", "type": "delay", "for": "1h"},
                {"id": "mail", "type": "send", "message": "cart_reminder", "channel": "email"},
            ],
        }
    )
    ids = [f"c-{i}" for i in range(12)]
    shop.profiles([profile(c) for c in ids])
    shop.events([event(f"add-{c}", "product.added", c, T0, sku="S-ü", n=i)
                 for i, c in enumerate(ids)])  # fmt: skip
    runner = JourneyRunner(shop.engine, {"cart": spec}, {})
    runner.run(T0 + timedelta(minutes=1))
    runner.run(T0 + timedelta(hours=2))  # some sent and done, holdouts waiting the goal
    buys = [event(f"o-{c}", "order.completed", c, T0 + timedelta(hours=3)) for c in ids[:6]]
    shop.events(buys)
    with shop.engine.connect() as connection:
        everyone = [
            row_to_enrollment(row)
            for row in connection.execute(ENROLLMENTS.select().order_by(ENROLLMENTS.c.id))
        ]
        active = active_enrollments(connection, "cart", ids)
        due = due_enrollments(connection, "cart", T0 + timedelta(days=4), 100)
        views = [EventView(b["id"], b["name"], b["customer_id"], T0 + timedelta(hours=3))
                 for b in buys]  # fmt: skip
        ended = awaiting_goal(connection, spec, views, T0 + timedelta(hours=3))
    assert active == [s for s in everyone if s.state == "active"]
    assert due == sorted(
        (s for s in everyone if s.state == "active" and s.wake_at is not None),
        key=lambda s: (s.wake_at, s.id),
    )
    assert ended == [s for s in everyone if s.state != "active" and s.customer_id in set(ids[:6])]
    assert active and due and ended  # each reading has something to compare
    assert any(s.holdout for s in everyone) and any(not s.holdout for s in everyone)
    assert all(type(s.holdout) is bool for s in active + due + ended)
    assert any(s.ended_at is not None for s in everyone)
