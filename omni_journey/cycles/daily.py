"""Purchase-cycle reminders on the store: ``run_purchase_cycles`` (daily, and after each
order batch).

One run reads every ``order.completed`` event (its ``products[].category``), fits the
category priors, predicts each customer's next purchase per category and keeps one
``purchase_cycles`` row per (customer, category):

* ``irregular``: buying is not regular enough (or too short a history): silent;
* ``scheduled``: regular, the reminder is due at ``due_at`` (the 25th percentile);
* ``due``: the run at or after ``due_at`` emitted ``purchase_cycle.due``;
* ``expired``: no run came between ``due_at`` and the window's end.

A purchase before the reminder is due starts a new cycle, so the pending one is never
emitted (counted in ``cancelled``). Event ids derive from (customer, category, cycle):
re-runs and overlapping runs never emit twice.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Table, Text, select, type_coerce
from sqlalchemy.dialects import postgresql, sqlite

from omni_journey.cycles.model import (
    CategoryPrior,
    CycleSettings,
    Prediction,
    fit_priors,
    log_intervals,
    occasions,
    predict_next,
)
from omni_journey.engine.filters import resolve_path
from omni_journey.spec.conditions import ORDER_COMPLETED
from omni_journey.store.events import append_events
from omni_journey.store.tables import metadata

__all__ = [
    "PURCHASE_CYCLE_DUE",
    "PurchaseCycleReport",
    "forget_cycles",
    "load_category_purchases",
    "order_categories",
    "purchase_cycle_event_id",
    "run_purchase_cycles",
]

PURCHASE_CYCLE_DUE = "purchase_cycle.due"
_MAX_ID = 255

events: Table = metadata.tables["events"]
cycles: Table = metadata.tables["purchase_cycles"]


@dataclass(frozen=True)
class PurchaseCycleReport:
    """What one run saw and did."""

    customers: int
    series: int
    regular: int
    scheduled: int
    emitted: int
    cancelled: int
    expired: int
    priors: dict[str, CategoryPrior] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "customers": self.customers,
            "series": self.series,
            "regular": self.regular,
            "scheduled": self.scheduled,
            "emitted": self.emitted,
            "cancelled": self.cancelled,
            "expired": self.expired,
            "categories": {
                key: {
                    "typical_days": round(p.typical_days, 2),
                    "median_days": round(p.median_days, 2),
                    "regular_customers": p.regular_customers,
                }
                for key, p in sorted(self.priors.items())
            },
        }


def purchase_cycle_event_id(customer_id: str, category: str, cycle: int) -> str:
    """``purchase_cycle.due:<customer>:<category>:<cycle>`` (hashed when too long)."""
    readable = f"{PURCHASE_CYCLE_DUE}:{customer_id}:{category}:{cycle}"
    if len(readable) <= _MAX_ID:
        return readable
    digest = hashlib.sha256(f"{customer_id}\x1f{category}\x1f{cycle}".encode()).hexdigest()
    return f"{PURCHASE_CYCLE_DUE}:{digest[:40]}"


def order_categories(properties: Any) -> set[str]:
    """The text values at ``products.category`` (lists fan out, as in ``where`` filters)."""
    if isinstance(properties, str | bytes):
        properties = orjson.loads(properties)
    if not isinstance(properties, dict):
        return set()
    products = properties.get("products")
    if isinstance(products, list) and "products.category" not in properties:
        found = [p.get("category") if isinstance(p, dict) else None for p in products]
        if all(c is None or isinstance(c, str) for c in found):  # the usual shape: quick
            return {c for c in found if c is not None}
    return {v for v in resolve_path(properties, "products.category") if isinstance(v, str)}


def load_category_purchases(
    connection: Connection, *, now: datetime, history: timedelta | None = None
) -> dict[tuple[str, str], list[datetime]]:
    """(customer, category) -> sorted purchase times up to ``now``, from each
    ``order.completed``'s ``products[].category``."""
    # the JSON comes as text (or psycopg's dict) and is read here: faster than a JSON
    # walk per order in SQL, and the same path semantics as a ``where`` filter
    raw = type_coerce(events.c.properties, Text)
    query = select(events.c.customer_id, events.c.at, raw.label("properties")).where(
        events.c.name == ORDER_COMPLETED, events.c.at <= now
    )
    if history is not None:
        query = query.where(events.c.at >= now - history)
    query = query.order_by(events.c.seq)  # the series' order sets the due events' order
    series: dict[tuple[str, str], set[datetime]] = defaultdict(set)
    for row in connection.execute(query):
        for category in sorted(order_categories(row.properties)):  # a set: hash order
            series[(str(row.customer_id), category)].add(row.at)
    return {key: sorted(times) for key, times in series.items()}


def run_purchase_cycles(
    engine: Engine,
    *,
    now: datetime,
    settings: CycleSettings | None = None,
    history: timedelta | None = timedelta(days=730),
) -> PurchaseCycleReport:
    """Predict, schedule, emit due reminders and record the schedule, in one transaction."""
    settings = settings or CycleSettings()
    with engine.begin() as connection:
        raw = load_category_purchases(connection, now=now, history=history)
        series = {key: occasions(times, settings.merge_within_days) for key, times in raw.items()}
        by_category: dict[str, list[Any]] = defaultdict(list)
        for (_, category), times in series.items():
            by_category[category].append(log_intervals(times, settings.max_intervals))
        priors = fit_priors(by_category, settings)
        previous = {
            (row.customer_id, row.category): row
            for row in connection.execute(select(cycles).with_for_update())
        }
        rows: list[dict[str, Any]] = []
        due: list[dict[str, Any]] = []
        counts: dict[str, int] = defaultdict(int)
        for key, times in series.items():
            prior = priors.get(key[1])
            prediction = predict_next(times, prior, settings) if prior else None
            before = previous.get(key)
            row = _next_state(key, times, prediction, before, now)
            if before is not None and before.status == "scheduled" and before.cycle < row["cycle"]:
                row["cancelled"] += 1
                counts["cancelled"] += 1
            counts["regular"] += bool(prediction and prediction.regular)
            counts[row["status"]] += 1
            if row["status"] == "due" and (before is None or before.event_id != row["event_id"]):
                due.append(_due_event(key, row, prediction, now))
            if _changed(before, row):
                rows.append(row)
        _upsert(connection, rows)
        if due:
            append_events(connection, due)
    return PurchaseCycleReport(
        customers=len({customer for customer, _ in series}),
        series=len(series),
        regular=counts["regular"],
        scheduled=counts["scheduled"],
        emitted=len(due),
        cancelled=counts["cancelled"],
        expired=counts["expired"],
        priors=priors,
    )


def _next_state(
    key: tuple[str, str],
    times: list[datetime],
    prediction: Prediction | None,
    before: Any,
    now: datetime,
) -> dict[str, Any]:
    customer_id, category = key
    cycle = len(times)
    row: dict[str, Any] = {
        "customer_id": customer_id,
        "category": category,
        "cycle": cycle,
        "status": "irregular",
        "intervals": len(times) - 1,
        "last_purchase_at": times[-1],
        "predicted_at": None,
        "window_start": None,
        "window_end": None,
        "due_at": None,
        "p_value": None,
        "confidence": None,
        "cancelled": before.cancelled if before is not None else 0,
        "event_id": before.event_id if before is not None else None,
        "updated_at": now,
    }
    if prediction is None:
        return row
    row.update(
        predicted_at=prediction.predicted_at,
        window_start=prediction.window_start,
        window_end=prediction.window_end,
        due_at=prediction.due_at,
        p_value=round(prediction.p_value, 6),
        confidence=prediction.confidence,
    )
    if not prediction.regular:
        return row
    event_id = purchase_cycle_event_id(customer_id, category, cycle)
    if before is not None and before.event_id == event_id:
        row["status"] = "due"  # emitted by an earlier run
    elif now < prediction.due_at:
        row["status"] = "scheduled"
    elif now <= prediction.window_end:
        row.update(status="due", event_id=event_id)
    else:
        row["status"] = "expired"
    return row


def _due_event(
    key: tuple[str, str], row: dict[str, Any], prediction: Prediction | None, now: datetime
) -> dict[str, Any]:
    assert prediction is not None
    return {
        "event_id": row["event_id"],
        "name": PURCHASE_CYCLE_DUE,
        "customer_id": key[0],
        "at": now,
        "received_at": now,
        "properties": {
            "category": key[1],
            "cycle": row["cycle"],
            "last_purchase_at": prediction.last_purchase_at.isoformat(),
            "predicted_at": prediction.predicted_at.isoformat(),
            "window_start": prediction.window_start.isoformat(),
            "window_end": prediction.window_end.isoformat(),
            "due_at": prediction.due_at.isoformat(),
            "confidence": prediction.confidence,
        },
    }


_COMPARED = ("cycle", "status", "event_id", "cancelled", "due_at")


def _changed(before: Any, row: dict[str, Any]) -> bool:
    if before is None:
        return True
    return any(getattr(before, name) != row[name] for name in _COMPARED)


def _upsert(connection: Connection, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    insert = (
        postgresql.insert(cycles)
        if connection.dialect.name == "postgresql"
        else sqlite.insert(cycles)
    )
    keys = ("customer_id", "category")
    statement = insert.on_conflict_do_update(
        index_elements=list(keys),
        set_={c.name: insert.excluded[c.name] for c in cycles.columns if c.name not in keys},
    )
    for start in range(0, len(rows), 5000):
        connection.execute(statement, rows[start : start + 5000])


def forget_cycles(connection: Connection, customer_ids: list[str]) -> int:
    """An erased customer's purchase cycles (predictions about a person) are deleted."""
    result = connection.execute(cycles.delete().where(cycles.c.customer_id.in_(customer_ids)))
    return int(result.rowcount or 0)
