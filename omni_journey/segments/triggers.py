"""Behavioural triggers out of the box: ready segments, and the catalogue fan-out.

Browse abandonment, cart abandonment, post-purchase and win-back are conditions on
what customers did (:data:`BEHAVIOURAL_SEGMENTS`). Price drop and back in stock start
from one catalogue event (``product.price_dropped`` / ``product.back_in_stock`` with a
``sku``, sent with ``customer_id`` :data:`CATALOGUE_CUSTOMER_ID`), which
:func:`fan_out_catalogue_events` turns into the same event for every customer who
viewed that sku shortly before, so journeys trigger on it per customer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Table, and_, func, select

from omni_journey.segments.json_sql import json_dialect
from omni_journey.spec.models import SegmentSpec
from omni_journey.store.events import append_events
from omni_journey.store.tables import metadata

__all__ = [
    "BEHAVIOURAL_SEGMENTS",
    "CATALOGUE_CUSTOMER_ID",
    "CATALOGUE_EVENTS",
    "FanOut",
    "behavioural_segments",
    "fan_out_catalogue_events",
    "fan_out_event_id",
]

CATALOGUE_CUSTOMER_ID = "_catalogue"
CATALOGUE_EVENTS = ("product.price_dropped", "product.back_in_stock")
VIEW_EVENT = "product.viewed"

# key -> condition, exactly as a marketer would write it in segments/<key>.yaml
BEHAVIOURAL_SEGMENTS: dict[str, dict[str, Any]] = {
    "browse_abandoners": {
        "all": [
            {"event": "product.viewed", "within": "1d"},
            {"not": {"event": "product.added", "within": "1d"}},
            {"not": {"event": "order.completed", "within": "1d"}},
        ]
    },
    "cart_abandoners": {
        "all": [
            {
                "any": [
                    {"event": "product.added", "within": "3d"},
                    {"event": "checkout.started", "within": "3d"},
                ]
            },
            {"not": {"event": "order.completed", "within": "3d"}},
        ]
    },
    "recent_buyers": {"event": "order.completed", "within": "7d"},
    "lapsed_customers": {"purchases": {"count": {"gte": 2}, "none_within": "90d"}},
    "price_drop_watchers": {"event": "product.price_dropped", "within": "1d"},
    "back_in_stock_watchers": {"event": "product.back_in_stock", "within": "1d"},
}


def behavioural_segments() -> dict[str, SegmentSpec]:
    """The ready segments as specs (a project's own ``segments/`` file of the same key wins)."""
    return {
        key: SegmentSpec.model_validate({"key": key, "match": match})
        for key, match in BEHAVIOURAL_SEGMENTS.items()
    }


@dataclass(frozen=True)
class FanOut:
    """``catalogue_events`` read; ``emitted`` new per-customer events (0 on a re-run)."""

    catalogue_events: int
    emitted: int


def fan_out_event_id(source_event_id: str, customer_id: str) -> str:
    digest = hashlib.sha256(f"{source_event_id}\x1f{customer_id}".encode()).hexdigest()
    return f"fanout:{digest[:40]}"


def fan_out_catalogue_events(
    engine: Engine,
    *,
    now: datetime,
    lookback: timedelta = timedelta(days=30),
    max_age: timedelta = timedelta(days=1),
    names: Sequence[str] = CATALOGUE_EVENTS,
    catalogue_customer_id: str = CATALOGUE_CUSTOMER_ID,
) -> FanOut:
    """Copy each catalogue event of the last ``max_age`` to every customer who viewed its
    sku within ``lookback`` before it. Idempotent: ids derive from (event, customer)."""
    events: Table = metadata.tables["events"]
    catalogue = events.alias("catalogue")
    views = events.alias("views")
    with engine.begin() as connection:
        json = json_dialect(connection.dialect.name)
        sku_of_catalogue = json.member(catalogue.c.properties, "sku").data
        pairs = connection.execute(
            select(
                catalogue.c.event_id,
                catalogue.c.name,
                catalogue.c.at,
                catalogue.c.properties,
                views.c.customer_id,
                func.max(views.c.at).label("viewed_at"),
            )
            .join(
                views,
                and_(
                    views.c.name == VIEW_EVENT,
                    views.c.customer_id != catalogue_customer_id,
                    views.c.at <= catalogue.c.at,
                    views.c.at >= now - max_age - lookback,
                    json.member(views.c.properties, "sku").data == sku_of_catalogue,
                ),
            )
            .where(
                catalogue.c.name.in_(list(names)),
                catalogue.c.customer_id == catalogue_customer_id,
                catalogue.c.at <= now,
                catalogue.c.at >= now - max_age,
                sku_of_catalogue.is_not(None),
            )
            .group_by(
                catalogue.c.event_id,
                catalogue.c.name,
                catalogue.c.at,
                catalogue.c.properties,
                views.c.customer_id,
            )
            .order_by(catalogue.c.at, catalogue.c.event_id, views.c.customer_id)
        ).all()
        sources = connection.execute(
            select(func.count()).where(
                events.c.name.in_(list(names)),
                events.c.customer_id == catalogue_customer_id,
                events.c.at <= now,
                events.c.at >= now - max_age,
            )
        ).scalar_one()
        rows = [
            {
                "event_id": fan_out_event_id(pair.event_id, pair.customer_id),
                "name": pair.name,
                "customer_id": pair.customer_id,
                "at": pair.at,
                "received_at": now,
                "properties": {**(pair.properties or {}), "source_event_id": pair.event_id},
            }
            for pair in pairs
            if pair.viewed_at >= pair.at - lookback
        ]
        emitted = 0
        for start in range(0, len(rows), 1000):
            chunk = rows[start : start + 1000]
            ids = [row["event_id"] for row in chunk]
            existing = select(events.c.event_id).where(events.c.event_id.in_(ids))
            known = {str(row[0]) for row in connection.execute(existing)}
            fresh = [row for row in chunk if row["event_id"] not in known]
            if fresh:
                append_events(connection, fresh)
                emitted += len(fresh)
    return FanOut(catalogue_events=int(sources), emitted=emitted)
