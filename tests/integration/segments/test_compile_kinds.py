"""Each condition kind, compiled to SQL and run on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from omni_journey.segments.compile import SegmentError, count_members, select_members
from omni_journey.spec.models import SegmentSpec
from omni_journey.store.tables import metadata

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def seg(key: str, match: dict[str, Any]) -> SegmentSpec:
    return SegmentSpec.model_validate({"key": key, "match": match})


def customer(cid: str, **fields: Any) -> dict[str, Any]:
    row = {"id": cid, "email": None, "phone": None, "attributes": {}, "merged_into": None}
    return {**row, **fields, "created_at": NOW, "updated_at": NOW}


def event(eid: str, cid: str, name: str, ago: timedelta, **props: Any) -> dict[str, Any]:
    return {
        "event_id": eid,
        "name": name,
        "customer_id": cid,
        "at": NOW - ago,
        "received_at": NOW,
        "properties": props,
    }


@pytest.fixture
def shop(store: Engine) -> Engine:
    rows: dict[str, list[dict[str, Any]]] = {
        "customers": [
            customer("ana", email="ana@example.com", attributes={"tier": "gold", "age": 34}),
            customer(
                "ben",
                email="ben@example.com",
                phone="+4915100000001",
                attributes={"tier": "silver", "age": "34"},
            ),
            customer("cy", attributes={"tier": None, "vip": True}),
            customer("dee", email="", phone="+4915100000002", attributes={"age": 70.5}),
            customer("old", email="old@example.com", merged_into="ana"),
        ],
        "consents": [
            {"customer_id": c, "channel": ch, "granted": g, "updated_at": NOW}
            for c, ch, g in [
                ("ana", "email", True),
                ("ben", "email", True),
                ("ben", "sms", False),
                ("cy", "push", True),
                ("dee", "sms", True),
                ("dee", "email", True),
                ("old", "email", True),
            ]
        ],
        "identities": [
            {"kind": "push_token", "value": v, "customer_id": c, "created_at": NOW}
            for c, v in [("cy", "tok-1"), ("cy", "tok-2"), ("ben", "tok-3")]
        ],
        "suppressions": [
            {"channel": ch, "address": a, "reason": "bounce", "created_at": NOW}
            for ch, a in [("email", "ben@example.com"), ("push", "tok-1")]
        ],
        "events": [
            event(
                "v1",
                "ana",
                "product.viewed",
                2 * DAY,
                sku="SERUM-30",
                category="skincare",
                price=24.0,
            ),
            event("v2", "ana", "product.viewed", 20 * DAY, sku="SOAP", category="bath", price=4),
            event(
                "v3",
                "ben",
                "product.viewed",
                1 * DAY,
                sku="SERUM-30",
                category="skincare",
                price="24",
            ),
            event("v4", "ben", "product.viewed", -2 * DAY, sku="X"),  # in the future
            event(
                "o1",
                "ana",
                "order.completed",
                10 * DAY,
                total=120.0,
                products=[
                    {"sku": "SERUM-30", "category": "skincare"},
                    {"sku": "SOAP", "category": "bath"},
                ],
            ),
            event(
                "o2",
                "ana",
                "order.completed",
                200 * DAY,
                total=30,
                products=[{"sku": "TEA", "category": "tea"}],
            ),
            event("o3", "cy", "order.completed", 100 * DAY, total=15, products=[]),
            event("o4", "old", "order.completed", 1 * DAY, total=999),
        ],
    }
    with store.begin() as connection:
        for table, values in rows.items():
            connection.execute(insert(metadata.tables[table]), values)
    return store


def members(engine: Engine, match: dict[str, Any], *others: SegmentSpec) -> list[str]:
    spec = seg("under_test", match)
    segments = {s.key: s for s in (spec, *others)}
    with engine.connect() as connection:
        return select_members(connection, spec, segments, now=NOW)


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ({"attribute": "tier", "equals": "gold"}, ["ana"]),
        ({"attribute": "tier", "in": ["gold", "silver"]}, ["ana", "ben"]),
        ({"attribute": "tier", "not_in": ["gold"]}, ["ben", "cy", "dee"]),
        ({"attribute": "tier", "exists": True}, ["ana", "ben"]),  # null is not there
        ({"attribute": "tier", "exists": False}, ["cy", "dee"]),
        ({"attribute": "age", "gte": 30}, ["ana", "dee"]),  # "34" is text, not a number
        ({"attribute": "age", "gt": 30, "lt": 70}, ["ana"]),
        ({"attribute": "vip", "equals": True}, ["cy"]),
        ({"attribute": "vip", "equals": 1}, []),  # true is not 1
    ],
)
def test_attribute(shop: Engine, match: dict[str, Any], expected: list[str]) -> None:
    assert members(shop, match) == expected


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ({"event": "product.viewed"}, ["ana", "ben"]),  # ben's future view does not count
        ({"event": "product.viewed", "within": "7d"}, ["ana", "ben"]),
        ({"event": "product.viewed", "within": "7d", "at_least": 2}, []),
        ({"event": "product.viewed", "at_least": 2}, ["ana"]),
        ({"event": "product.viewed", "at_most": 1}, ["ben"]),
        ({"event": "product.viewed", "where": {"category": "skincare"}}, ["ana", "ben"]),
        ({"event": "product.viewed", "where": {"price": {"gte": 20}}}, ["ana"]),
        ({"event": "product.viewed", "where": {"price": 24}}, ["ana"]),  # 24 == 24.0
        ({"event": "product.viewed", "where": {"sku": ["SOAP", "NONE"]}}, ["ana"]),
        ({"event": "order.completed", "where": {"products.category": "tea"}}, ["ana"]),
        ({"event": "order.completed", "where": {"products.sku": {"exists": False}}}, ["cy"]),
        ({"event": "order.completed", "where": {"sku": {"contains": "ERUM"}}}, []),
    ],
)
def test_event(shop: Engine, match: dict[str, Any], expected: list[str]) -> None:
    assert members(shop, match) == expected


@pytest.mark.parametrize(
    ("measures", "expected"),
    [
        ({"count": {"gte": 1}}, ["ana", "cy"]),  # "old" is merged into ana: not a member
        ({"count": {"gte": 2}}, ["ana"]),
        ({"count": {"eq": 0}}, ["ben", "dee"]),
        ({"within": "30d", "count": {"lte": 0}}, ["ben", "cy", "dee"]),
        ({"total": {"gte": 100}}, ["ana"]),
        ({"within": "30d", "total": {"gte": 100}}, ["ana"]),
        ({"within": "30d", "total": {"gte": 121}}, []),
        ({"last_within": "30d"}, ["ana"]),
        ({"none_within": "30d"}, ["ben", "cy", "dee"]),  # win-back includes never-bought
        ({"none_within": "30d", "count": {"gte": 1}}, ["cy"]),
    ],
)
def test_purchases(shop: Engine, measures: dict[str, Any], expected: list[str]) -> None:
    assert members(shop, {"purchases": measures}) == expected


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ({"consent": "email"}, ["ana", "ben", "dee"]),
        ({"consent": "sms"}, ["dee"]),
        ({"reachable": "email"}, ["ana"]),  # ben suppressed, dee has an empty address
        ({"reachable": "sms"}, ["dee"]),  # ben has no sms consent
        ({"reachable": "push"}, ["cy"]),  # tok-1 suppressed, tok-2 open; ben: no consent
        ({"reachable": "whatsapp"}, []),
    ],
)
def test_consent_and_reachable(shop: Engine, match: dict[str, Any], expected: list[str]) -> None:
    assert members(shop, match) == expected


def test_all_any_not(shop: Engine) -> None:
    gold = {"attribute": "tier", "equals": "gold"}
    viewed = {"event": "product.viewed", "within": "7d"}
    assert members(shop, {"all": [gold, viewed]}) == ["ana"]
    assert members(shop, {"any": [gold, {"consent": "sms"}]}) == ["ana", "dee"]
    assert members(shop, {"not": viewed}) == ["cy", "dee"]
    assert members(shop, {"not": {"not": viewed}}) == ["ana", "ben"]
    # not over a test that is unknown for a missing value still splits the shop in two
    assert members(shop, {"not": {"attribute": "age", "gte": 30}}) == ["ben", "cy"]


def test_segment_references_are_inlined(shop: Engine) -> None:
    gold = seg("gold", {"attribute": "tier", "in": ["gold", "silver"]})
    emailable = seg("emailable", {"all": [{"segment": "gold"}, {"reachable": "email"}]})
    assert members(shop, {"segment": "emailable"}, gold, emailable) == ["ana"]
    assert members(shop, {"not": {"segment": "gold"}}, gold) == ["cy", "dee"]


def test_segment_cycles_and_unknown_segments_are_errors(shop: Engine) -> None:
    a = seg("a", {"segment": "b"})
    b = seg("b", {"any": [{"consent": "sms"}, {"segment": "a"}]})
    with shop.connect() as connection:
        with pytest.raises(SegmentError) as cycle:
            select_members(connection, a, {"a": a, "b": b}, now=NOW)
        assert cycle.value.code == "segment-cycle"
        assert "a -> b -> a" in str(cycle.value)
        lost = seg("lost", {"segment": "nowhere"})
        with pytest.raises(SegmentError) as unknown:
            select_members(connection, lost, {"lost": lost}, now=NOW)
        assert unknown.value.code == "unknown-segment"


def test_now_is_a_parameter(shop: Engine) -> None:
    spec = seg("recent", {"event": "product.viewed", "within": "1d"})
    with shop.connect() as connection:
        assert select_members(connection, spec, {}, now=NOW) == ["ben"]
        later = NOW + 3 * DAY  # ben's "future" view is now in the past day
        assert select_members(connection, spec, {}, now=later) == ["ben"]
        assert select_members(connection, spec, {}, now=NOW - 5 * DAY) == []
        assert count_members(connection, seg("all", {"consent": "email"}), {}, now=NOW) == 3
        assert select_members(
            connection, seg("all", {"consent": "email"}), {}, now=NOW, limit=2
        ) == ["ana", "ben"]


def test_quotes_in_names_are_refused(shop: Engine) -> None:
    spec = seg("odd", {"attribute": 'say "hi"', "exists": True})
    with shop.connect() as connection, pytest.raises(SegmentError) as error:
        select_members(connection, spec, {}, now=NOW)
    assert error.value.code == "unsupported-name"
