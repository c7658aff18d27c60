"""The runner's hot reads through the driver give exactly what the SQLAlchemy column
types give (SQLite file and PostgreSQL): timestamps as aware UTC datetimes, JSON as
the same values (big integers, unicode, nesting), the same order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select

from omni_journey.runner.reads import events_after
from omni_journey.runner.records import row_to_event
from omni_journey.store.core import EVENTS
from tests.integration.engine.conftest import T0, Shop, event


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
