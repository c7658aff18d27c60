"""The end-to-end benchmark's data: a shop's profiles and three days of behaviour.

Deterministic from the seed. Customers are profiles (docs/data-formats.md); events come in
browsing sessions (views, sometimes an add to cart, a checkout, an order), a few
preceded by ``account.created``, and are written to one JSON Lines file per import
chunk, split by time. Standard library only.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday, in the past of the machine's clock
DAYS = 3
ZONES = ("Europe/Berlin", "Europe/Paris", "Europe/London", "America/New_York", "Asia/Tokyo")
LOCALES = ("en-GB", "de-DE", "fr-FR", "en-US")
FIRST_NAMES = ("Ana", "Ben", "Chloé", "Dawit", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jun")
TIERS = ("bronze", "bronze", "bronze", "silver", "silver", "gold", "platinum")
CATEGORIES = ("skincare", "haircare", "makeup", "fragrance", "coffee")
# (journey, trigger event, required category) of the event-triggered journeys in journeys/;
# the set-based enrollment floor enrolls one row per (customer, journey) from these
TRIGGERS = (
    ("browse_abandonment", "product.viewed", "skincare"),
    ("cart_abandonment", "product.added", None),
    ("post_purchase_cross_sell", "order.completed", None),
    ("welcome_series", "account.created", None),
)


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    category: str
    price: float


def catalogue(rng: random.Random, size: int = 200) -> list[Product]:
    return [
        Product(
            f"SKU-{i:05d}",
            f"{CATEGORIES[i % len(CATEGORIES)].title()} item {i}",
            CATEGORIES[i % len(CATEGORIES)],
            round(rng.uniform(4, 90), 2),
        )
        for i in range(size)
    ]


def customer_id(index: int) -> str:
    return f"c-{index:07d}"


def write_customers(path: Path, count: int, seed: int) -> int:
    """One profile a line: contact, time zone, locale, consent per channel, attributes."""
    rng = random.Random(seed)
    with path.open("w") as out:
        for i in range(count):
            cid = customer_id(i)
            sms, push = rng.random() < 0.4, rng.random() < 0.5
            profile: dict[str, object] = {
                "customer_id": cid,
                "email": f"{cid}@example.com",
                "timezone": ZONES[rng.randrange(len(ZONES))],
                "locale": LOCALES[rng.randrange(len(LOCALES))],
                "consent": {"email": rng.random() < 0.9, "sms": sms, "push": push},
                "attributes": {
                    "first_name": FIRST_NAMES[rng.randrange(len(FIRST_NAMES))],
                    "tier": TIERS[rng.randrange(len(TIERS))],
                },
            }
            if sms or rng.random() < 0.2:
                profile["phone"] = f"+49151{i:08d}"
            if push:
                profile["push_tokens"] = [f"fcm-{seed}-{i}"]
            out.write(json.dumps(profile, separators=(",", ":"), ensure_ascii=False) + "\n")
    return count


# one event: seconds from START, customer index, name, sku index, order number (or -1)
Event = tuple[float, int, str, int, int]


def _sessions(count: int, customers: int, seed: int, products: int) -> list[Event]:
    rng = random.Random(seed + 1)
    span = DAYS * 86400.0
    events: list[Event] = []
    signed_up: set[int] = set()
    orders = 0
    while len(events) < count:
        who = int(customers * rng.random() ** 1.5)  # some customers much more active
        t = rng.uniform(0, span - 3600)
        if who not in signed_up and rng.random() < 0.03:
            signed_up.add(who)
            events.append((t, who, "account.created", -1, -1))
        sku = rng.randrange(products)
        for _ in range(1 + int(rng.expovariate(0.6))):
            t += rng.uniform(20, 240)
            sku = sku if rng.random() < 0.5 else rng.randrange(products)
            events.append((t, who, "product.viewed", sku, -1))
        if rng.random() < 0.35:
            t += rng.uniform(30, 600)
            events.append((t, who, "product.added", sku, -1))
            if rng.random() < 0.5:
                t += rng.uniform(60, 900)
                events.append((t, who, "checkout.started", sku, -1))
                if rng.random() < 0.6:
                    t += rng.uniform(60, 600)
                    orders += 1
                    events.append((t, who, "order.completed", sku, orders))
    del events[count:]
    events.sort()
    return events


def _stamp(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")[:-6] + "Z"


def _properties(event: Event, shop: list[Product]) -> dict[str, object]:
    _, _, name, sku, order = event
    if sku < 0:
        return {"source": "web"}
    p = shop[sku]
    item = {"sku": p.sku, "product_name": p.name, "category": p.category, "price": p.price}
    if name == "order.completed":
        quantity = 1 + order % 3
        return {
            "order_id": f"o-{order:08d}",
            "total": round(p.price * quantity, 2),
            "currency": "EUR",
            "category": p.category,
            "products": [{**item, "quantity": quantity}],
        }
    if name == "checkout.started":
        return {"cart_total": p.price, "currency": "EUR", "items": 1}
    return item


def write_events(
    folder: Path, count: int, customers: int, seed: int, chunk_hours: int
) -> list[tuple[Path, datetime]]:
    """The events in chunk files by time; each file with the end of its time window."""
    shop = catalogue(random.Random(seed + 2))
    events = _sessions(count, customers, seed, len(shop))
    width = chunk_hours * 3600
    chunks = [
        (folder / f"events-{k:02d}.jsonl", START + timedelta(seconds=(k + 1) * width))
        for k in range(-(-DAYS * 86400 // width))
    ]
    handles = [path.open("w") for path, _ in chunks]
    try:
        for i, event in enumerate(events):
            record = {
                "id": f"e-{seed}-{i:08d}",
                "name": event[2],
                "customer_id": customer_id(event[1]),
                "at": _stamp(event[0]),
                "properties": _properties(event, shop),
            }
            line = json.dumps(record, separators=(",", ":"))
            handles[int(event[0] // width)].write(line + "\n")
    finally:
        for handle in handles:
            handle.close()
    return chunks
