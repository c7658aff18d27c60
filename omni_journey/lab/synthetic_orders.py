"""A generated shop where a known share of customers buy on a real cycle.

Cyclic customers buy a category every ``typical x personal factor`` days with a little
jitter (and now and then skip a cycle, as real people stock up or buy elsewhere);
the others buy the same categories at random (a Poisson process at a similar average
rate). Seeded: the same arguments give the same orders. Used by tests, bench and the
``backtest`` command's ``--generate`` option.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

__all__ = ["DEFAULT_CATEGORIES", "GeneratedShop", "Order", "generate_orders", "order_events"]

DEFAULT_CATEGORIES: Mapping[str, float] = {
    "coffee": 14.0,
    "pet_food": 28.0,
    "skincare": 45.0,
    "vitamins": 60.0,
}


@dataclass(frozen=True, order=True)
class Order:
    """One purchase of one category (an order of several categories is several rows)."""

    at: datetime
    customer_id: str
    category: str
    amount: float = 0.0


@dataclass(frozen=True)
class GeneratedShop:
    orders: list[Order]
    cyclic: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC)
    end: datetime = datetime(2026, 1, 1, tzinfo=UTC)


def generate_orders(
    seed: int,
    customers: int,
    share_cyclic: float,
    *,
    days: int = 730,
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC),
    categories: Mapping[str, float] = DEFAULT_CATEGORIES,
    jitter: float = 0.12,
    personal_spread: float = 0.25,
    skip_probability: float = 0.05,
    max_categories: int = 2,
) -> GeneratedShop:
    """Orders over ``days`` from ``start`` for ``customers`` customers, a ``share_cyclic``
    of whom buy each of their categories on a cycle (the truth is in ``cyclic``)."""
    rng = np.random.default_rng(seed)
    names = list(categories)
    horizon = float(days)
    orders: list[Order] = []
    cyclic: set[tuple[str, str]] = set()
    for n in range(customers):
        customer_id = f"c-{n:06d}"
        is_cyclic = bool(rng.random() < share_cyclic)
        count = int(rng.integers(1, max_categories + 1))
        for category in rng.choice(names, size=min(count, len(names)), replace=False):
            typical = categories[str(category)]
            personal = typical * math.exp(rng.normal(0.0, personal_spread))
            if is_cyclic:
                cyclic.add((customer_id, str(category)))
            t = float(rng.uniform(0.0, personal))
            while t < horizon:
                minute = round(t * 1440)
                orders.append(
                    Order(
                        at=start + timedelta(minutes=minute),
                        customer_id=customer_id,
                        category=str(category),
                        amount=round(float(rng.uniform(5, 80)), 2),
                    )
                )
                if is_cyclic:
                    cycles = 2 if rng.random() < skip_probability else 1
                    t += cycles * personal * math.exp(rng.normal(0.0, jitter))
                else:
                    t += float(rng.exponential(personal))
    orders.sort()
    return GeneratedShop(
        orders=orders,
        cyclic=frozenset(cyclic),
        start=start,
        end=start + timedelta(days=days),
    )


def order_events(orders: Iterable[Order], *, received_at: datetime) -> Iterator[dict[str, Any]]:
    """``order.completed`` rows for the ``events`` table, one per order, ids by position."""
    for n, order in enumerate(orders):
        yield {
            "event_id": f"order-{n:08d}",
            "name": "order.completed",
            "customer_id": order.customer_id,
            "at": order.at,
            "received_at": received_at,
            "properties": {
                "order_id": f"o-{n:08d}",
                "total": order.amount,
                "currency": "EUR",
                "products": [
                    {
                        "sku": f"{order.category.upper()}-1",
                        "category": order.category,
                        "price": order.amount,
                        "quantity": 1,
                    }
                ],
            },
        }
