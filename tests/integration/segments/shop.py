"""A seeded little shop (profiles, consent, identities, suppressions, events) and random
conditions over it, for checking the SQL compiler against ``BatchFacts``."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert

from omni_journey.spec.conditions import CHANNELS
from omni_journey.spec.models import SegmentSpec
from omni_journey.store.tables import metadata

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
EVENT_NAMES = ["product.viewed", "product.added", "order.completed", "checkout.started"]
SKUS = ["A", "B", "C"]
CATEGORIES = ["tea", "coffee", None]
ODD_VALUES: list[Any] = [None, True, False, 0, 1, 1.0, 2.5, "1", "gold", ""]


@dataclass
class Shop:
    customers: list[dict[str, Any]] = field(default_factory=list)
    consents: list[dict[str, Any]] = field(default_factory=list)
    identities: list[dict[str, Any]] = field(default_factory=list)
    suppressions: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def live_ids(self) -> list[str]:
        return sorted(c["id"] for c in self.customers if c["merged_into"] is None)


def _properties(rng: random.Random, name: str) -> dict[str, Any]:
    props: dict[str, Any] = {}
    if rng.random() < 0.8:
        props["sku"] = rng.choice(SKUS)
    if rng.random() < 0.7:
        props["category"] = rng.choice(CATEGORIES)
    if rng.random() < 0.6:
        props["price"] = rng.choice([5, 10.0, 19.5, 30, "12", True, None])
    if name == "order.completed":
        props["total"] = rng.choice([10, 25, 40, 80, 120, "50", None])
        props["products"] = [
            {"sku": rng.choice(SKUS), "category": rng.choice(CATEGORIES)}
            for _ in range(rng.randint(0, 3))
        ]
    if rng.random() < 0.1:
        props["page.url"] = rng.choice(["/a", "/b"])
    if rng.random() < 0.1:
        props["page"] = {"url": rng.choice(["/a", "/b"])}
    return props


def build_shop(seed: int, size: int = 60) -> Shop:
    rng = random.Random(seed)
    shop = Shop()
    addresses: list[tuple[str, str]] = []
    for n in range(size):
        cid = f"c-{n:03d}"
        attributes: dict[str, Any] = {}
        for key in ("tier", "age", "vip", "a.b"):
            if rng.random() < 0.75:
                attributes[key] = rng.choice([*ODD_VALUES, 18, 40, 65.5, "silver", [1], {"x": 1}])
        email = rng.choice([None, "", f"{cid}@example.com", f"{cid}@example.com"])
        phone = rng.choice([None, f"+4915100{n:05d}"])
        shop.customers.append(
            {
                "id": cid,
                "email": email,
                "phone": phone,
                "attributes": attributes,
                "merged_into": "c-000" if n and rng.random() < 0.05 else None,
                "created_at": NOW,
                "updated_at": NOW,
            }
        )
        for channel in CHANNELS:
            if rng.random() < 0.7:
                shop.consents.append(
                    {
                        "customer_id": cid,
                        "channel": channel,
                        "granted": rng.random() < 0.7,
                        "updated_at": NOW,
                    }
                )
        for t in range(rng.choice([0, 0, 1, 2])):
            token = f"tok-{cid}-{t}"
            shop.identities.append(
                {"kind": "push_token", "value": token, "customer_id": cid, "created_at": NOW}
            )
            addresses.append(("push", token))
        if email:
            addresses.append(("email", email))
        if phone:
            addresses += [("sms", phone), ("whatsapp", phone)]
        for e in range(rng.randint(0, 12)):
            name = rng.choice(EVENT_NAMES)
            shop.events.append(
                {
                    "event_id": f"{cid}-e{e}",
                    "name": name,
                    "customer_id": cid,
                    "at": NOW - timedelta(days=rng.uniform(-5, 500)),
                    "received_at": NOW,
                    "properties": _properties(rng, name),
                }
            )
    for channel, address in rng.sample(addresses, k=len(addresses) // 4):
        shop.suppressions.append(
            {"channel": channel, "address": address, "reason": "bounce", "created_at": NOW}
        )
    return shop


def load_shop(engine: Engine, shop: Shop) -> None:
    with engine.begin() as connection:
        for table, rows in (
            ("customers", shop.customers),
            ("consents", shop.consents),
            ("identities", shop.identities),
            ("suppressions", shop.suppressions),
            ("events", shop.events),
        ):
            if rows:
                connection.execute(insert(metadata.tables[table]), rows)


# --- random conditions -------------------------------------------------------------

BASE_SEGMENTS = {
    "gold": {"attribute": "tier", "in": ["gold", "silver"]},
    "emailable": {"reachable": "email"},
    "viewers": {"event": "product.viewed", "within": "30d"},
}


def base_segments() -> dict[str, SegmentSpec]:
    return {
        key: SegmentSpec.model_validate({"key": key, "match": match})
        for key, match in BASE_SEGMENTS.items()
    }


def _comparison(rng: random.Random) -> dict[str, Any]:
    options: list[dict[str, Any]] = [
        {"eq": rng.choice(ODD_VALUES[1:])},
        {"ne": rng.choice(ODD_VALUES[1:])},
        {"in": rng.sample(ODD_VALUES, 2)},
        {"not_in": rng.sample(ODD_VALUES, 2)},
        {"gte": rng.choice([0, 10, 20])},
        {"gt": 5, "lt": 25},
        {"exists": rng.random() < 0.5},
        {"contains": rng.choice(["o", "l", ""])},
    ]
    return rng.choice(options)


def _attribute(rng: random.Random) -> dict[str, Any]:
    test = rng.choice(
        [
            {"equals": rng.choice(ODD_VALUES[1:])},
            {"not_equals": rng.choice(ODD_VALUES[1:])},
            {"in": rng.sample(ODD_VALUES, 3)},
            {"not_in": rng.sample(ODD_VALUES, 2)},
            {"gte": rng.choice([0, 18, 40])},
            {"gt": 1, "lte": 65.5},
            {"exists": rng.random() < 0.5},
        ]
    )
    return {"attribute": rng.choice(["tier", "age", "vip", "a.b", "missing"]), **test}


def _event(rng: random.Random) -> dict[str, Any]:
    condition: dict[str, Any] = {"event": rng.choice(EVENT_NAMES)}
    where: dict[str, Any] = {}
    for _ in range(rng.choice([0, 0, 1, 2])):
        path = rng.choice(["sku", "category", "price", "products.category", "page.url", "total"])
        kind = rng.random()
        if kind < 0.4:
            where[path] = rng.choice([*SKUS, "tea", "coffee", None, 10, "/a"])
        elif kind < 0.6:
            where[path] = rng.sample([*SKUS, "tea", None, "/b"], 2)
        else:
            where[path] = _comparison(rng)
    if where:
        condition["where"] = where
    within = rng.choice([None, "7d", "30d", "365d"])
    if within:
        condition["within"] = within
    if rng.random() < 0.3:
        condition["at_least"] = rng.randint(1, 3)
    if rng.random() < 0.2:
        condition["at_most"] = rng.randint(0, 3)
    return condition


def _purchases(rng: random.Random) -> dict[str, Any]:
    measures: dict[str, Any] = {}
    if rng.random() < 0.5:
        measures["within"] = rng.choice(["30d", "180d", "365d"])
    if rng.random() < 0.3:
        measures["last_within"] = rng.choice(["30d", "90d"])
    if rng.random() < 0.3:
        measures["none_within"] = rng.choice(["30d", "90d"])
    if rng.random() < 0.5:
        measures["count"] = rng.choice([{"gte": 1}, {"gte": 2}, {"lte": 1}, {"eq": 0}])
    if rng.random() < 0.5:
        measures["total"] = rng.choice([{"gte": 50}, {"lt": 30}, {"gt": 0, "lte": 100}])
    return {"purchases": measures}


def random_condition(rng: random.Random, depth: int = 3) -> dict[str, Any]:
    if depth > 0 and rng.random() < 0.45:
        kind = rng.choice(["all", "any", "not"])
        if kind == "not":
            return {"not": random_condition(rng, depth - 1)}
        return {kind: [random_condition(rng, depth - 1) for _ in range(rng.randint(1, 3))]}
    leaf = rng.choice(
        ["attribute", "event", "event", "segment", "consent", "reachable", "purchases"]
    )
    if leaf == "attribute":
        return _attribute(rng)
    if leaf == "event":
        return _event(rng)
    if leaf == "segment":
        return {"segment": rng.choice(sorted(BASE_SEGMENTS))}
    if leaf == "consent":
        return {"consent": rng.choice(CHANNELS)}
    if leaf == "reachable":
        return {"reachable": rng.choice(CHANNELS)}
    return _purchases(rng)
