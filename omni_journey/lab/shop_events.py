"""The simulator's output: event dicts (docs/data-formats.md), the shop's catalogue, and the
stand-in for the runner and the dispatcher that benchmarks use to record sends."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection

from omni_journey.store.core import MESSAGES as MESSAGES_TABLE

__all__ = ["CATEGORIES", "EventWriter", "Order", "SentMessage", "record_sends", "sent_events"]

CATEGORIES: tuple[tuple[str, float], ...] = (
    ("coffee", 14.0),
    ("skincare", 32.0),
    ("shoes", 79.0),
    ("books", 18.0),
    ("home", 45.0),
)


class EventWriter:
    """Collects events with unique, deterministic ids; ``drain`` hands them over in
    time order."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._count = 0
        self._pending: list[tuple[float, str, str, str, dict[str, Any]]] = []
        self._ready: list[dict[str, Any]] = []

    def add(self, name: str, customer_id: str, at: float, properties: dict[str, Any]) -> None:
        self._count += 1
        self._pending.append((at, f"{self._prefix}-{self._count}", name, customer_id, properties))

    def extend(self, events: list[dict[str, Any]]) -> None:
        self._ready.extend(events)

    def drain(self) -> list[dict[str, Any]]:
        pending, self._pending = self._pending, []
        ready, self._ready = self._ready, []
        if pending:
            micros = np.array([round(p[0] * 1e6) for p in pending], dtype="int64")
            stamps = np.datetime_as_string(micros.astype("datetime64[us]"), unit="us")
            ready.extend(
                {
                    "id": event_id,
                    "name": name,
                    "customer_id": customer_id,
                    "at": f"{stamp}+00:00",
                    "properties": properties,
                }
                for (_, event_id, name, customer_id, properties), stamp in zip(
                    pending, stamps.tolist(), strict=True
                )
            )
        ready.sort(key=lambda event: str(event["at"]))
        return ready


@dataclass(frozen=True)
class Order:
    """One ``order.completed``: a few items, mostly from one category."""

    order_id: str
    items: tuple[tuple[str, str, float, int], ...]  # sku, category, price, quantity

    @staticmethod
    def sku(category: int, item: int) -> str:
        return f"{CATEGORIES[category][0].upper()}-{item:02d}"

    @classmethod
    def draw(cls, rng: np.random.Generator, category: int) -> Order:
        items = []
        for _ in range(1 + int(rng.random() < 0.3)):
            name, price = CATEGORIES[category]
            item = int(rng.integers(0, 20))
            items.append((cls.sku(category, item), name, round(price * (0.8 + item / 40), 2), 1))
            category = int(rng.integers(0, len(CATEGORIES)))
        return cls(f"o-{int(rng.integers(0, 2**62)):x}", tuple(items))

    def properties(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "total": round(sum(price * qty for _, _, price, qty in self.items), 2),
            "currency": "EUR",
            "products": [
                {"sku": sku, "category": category, "price": price, "quantity": qty}
                for sku, category, price, qty in self.items
            ],
        }


@dataclass(frozen=True)
class SentMessage:
    """One message handed to a provider: what :meth:`Shop.respond` answers."""

    message_id: int | str
    customer_id: str
    channel: str
    message: str
    at: datetime


def sent_events(sent: Sequence[SentMessage]) -> list[dict[str, Any]]:
    """The ``message.sent`` events the dispatcher would emit for ``sent``."""
    return [
        {
            "id": f"message.sent:{s.message_id}",
            "name": "message.sent",
            "customer_id": s.customer_id,
            "at": s.at.isoformat(),
            "properties": {"message_id": s.message_id, "channel": s.channel, "message": s.message},
        }
        for s in sent
    ]


def record_sends(
    connection: Connection,
    decisions: Sequence[tuple[str, str, Mapping[str, Any]]],
    *,
    message_keys: Sequence[str],
    now: datetime,
    key_prefix: str,
) -> list[SentMessage]:
    """Stand-in for the runner and the dispatcher: store each (customer, channel,
    decision log) as a sent outbox row, and return what was sent (with row ids)."""
    rows: list[dict[str, Any]] = [
        {
            "idempotency_key": f"{key_prefix}:{customer_id}",
            "customer_id": customer_id,
            "channel": channel,
            "message_key": message,
            "journey_key": "simulation",
            "step_id": "send",
            "status": "sent",
            "send_after": now,
            "created_at": now,
            "sent_at": now,
            "attempts": 1,
            "provider": "simulator",
            "decision": dict(decision),
            "render_context": {},
        }
        for (customer_id, channel, decision), message in zip(decisions, message_keys, strict=True)
    ]
    if not rows:
        return []
    ids = (
        connection.execute(
            MESSAGES_TABLE.insert().returning(MESSAGES_TABLE.c.id, sort_by_parameter_order=True),
            rows,
        )
        .scalars()
        .all()
    )
    return [
        SentMessage(int(i), row["customer_id"], row["channel"], row["message_key"], now)
        for i, row in zip(ids, rows, strict=True)
    ]
