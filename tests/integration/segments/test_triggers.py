"""Ready behavioural segments, and the price-drop / back-in-stock fan-out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select

from omni_journey.segments.compile import select_members
from omni_journey.segments.triggers import (
    CATALOGUE_CUSTOMER_ID,
    behavioural_segments,
    fan_out_catalogue_events,
    fan_out_event_id,
)
from omni_journey.store.tables import metadata

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
events = metadata.tables["events"]


def load(
    engine: Engine, customers: list[str], rows: list[tuple[str, str, str, datetime, dict[str, Any]]]
) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(metadata.tables["customers"]),
            [{"id": c, "attributes": {}, "created_at": NOW, "updated_at": NOW} for c in customers],
        )
        connection.execute(
            insert(events),
            [
                {
                    "event_id": eid,
                    "name": name,
                    "customer_id": cid,
                    "at": at,
                    "received_at": at,
                    "properties": props,
                }
                for eid, name, cid, at, props in rows
            ],
        )


def test_ready_segments(store: Engine) -> None:
    load(
        store,
        ["browser", "carter", "buyer", "lapsed", "loyal"],
        [
            ("1", "product.viewed", "browser", NOW - 3 * HOUR, {"sku": "A"}),
            ("2", "product.viewed", "carter", NOW - 5 * HOUR, {"sku": "A"}),
            ("3", "product.added", "carter", NOW - 4 * HOUR, {"sku": "A"}),
            ("4", "product.added", "buyer", NOW - 9 * HOUR, {"sku": "A"}),
            ("5", "order.completed", "buyer", NOW - 8 * HOUR, {"total": 20}),
            ("6", "order.completed", "lapsed", NOW - 200 * DAY, {"total": 20}),
            ("7", "order.completed", "lapsed", NOW - 150 * DAY, {"total": 20}),
            ("8", "order.completed", "loyal", NOW - 200 * DAY, {"total": 20}),
            ("9", "order.completed", "loyal", NOW - 20 * DAY, {"total": 20}),
        ],
    )
    segments = behavioural_segments()
    with store.connect() as connection:
        found = {
            key: select_members(connection, spec, segments, now=NOW)
            for key, spec in segments.items()
        }
    assert found == {
        "browse_abandoners": ["browser"],
        "cart_abandoners": ["carter"],
        "recent_buyers": ["buyer"],
        "lapsed_customers": ["lapsed"],
        "price_drop_watchers": [],
        "back_in_stock_watchers": [],
    }


def test_catalogue_events_fan_out_to_recent_viewers_once(store: Engine) -> None:
    load(
        store,
        ["ana", "ben", "cy", "dee"],
        [
            ("v1", "product.viewed", "ana", NOW - 5 * DAY, {"sku": "SERUM"}),
            ("v2", "product.viewed", "ana", NOW - 2 * DAY, {"sku": "SERUM"}),
            ("v3", "product.viewed", "ben", NOW - 40 * DAY, {"sku": "SERUM"}),  # too long ago
            ("v4", "product.viewed", "cy", NOW - 1 * DAY, {"sku": "SOAP"}),
            ("v5", "product.viewed", "dee", NOW - HOUR / 2, {"sku": "SERUM"}),  # after the drop
            ("v6", "product.viewed", "cy", NOW - 3 * DAY, {"sku": "SOAP"}),
            (
                "drop-1",
                "product.price_dropped",
                CATALOGUE_CUSTOMER_ID,
                NOW - HOUR,
                {"sku": "SERUM", "price": 19.0, "old_price": 24.0},
            ),
            (
                "stock-1",
                "product.back_in_stock",
                CATALOGUE_CUSTOMER_ID,
                NOW - 2 * HOUR,
                {"sku": "SOAP"},
            ),
            (
                "stock-0",
                "product.back_in_stock",
                CATALOGUE_CUSTOMER_ID,
                NOW - 9 * DAY,
                {"sku": "SOAP"},
            ),
        ],
    )
    first = fan_out_catalogue_events(store, now=NOW, lookback=30 * DAY)
    assert (first.catalogue_events, first.emitted) == (2, 2)
    again = fan_out_catalogue_events(store, now=NOW, lookback=30 * DAY)
    assert (again.catalogue_events, again.emitted) == (2, 0)
    with store.connect() as connection:
        rows = connection.execute(
            select(events.c.event_id, events.c.name, events.c.customer_id, events.c.properties)
            .where(events.c.event_id.like("fanout:%"))
            .order_by(events.c.customer_id)
        ).all()
    assert [(r.name, r.customer_id) for r in rows] == [
        ("product.price_dropped", "ana"),
        ("product.back_in_stock", "cy"),
    ]
    assert rows[0].event_id == fan_out_event_id("drop-1", "ana")
    assert rows[0].properties == {
        "sku": "SERUM",
        "price": 19.0,
        "old_price": 24.0,
        "source_event_id": "drop-1",
    }
    with store.connect() as connection:
        segments = behavioural_segments()
        watchers = select_members(connection, segments["price_drop_watchers"], segments, now=NOW)
    assert watchers == ["ana"]
