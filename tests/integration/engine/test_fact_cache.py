"""The pass's fact cache (SQLite file and PostgreSQL): the same facts as a fresh
``load_facts``, each customer read once, and what the pass itself writes read again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import insert, update

from omni_journey.engine import FactNeeds
from omni_journey.runner.passes import JourneyRunner
from omni_journey.segments.fact_cache import FactCache
from omni_journey.segments.facts import ALL_FACTS, BatchFacts, load_facts
from omni_journey.spec.models import FrequencyCap
from omni_journey.store.core import CUSTOMERS, EVENTS, MESSAGES
from tests.integration.engine.conftest import T0, Shop, event, journey, profile

NOW = T0 + timedelta(hours=1)
CUSTOMERS_IDS = ["c-0", "c-1", "c-2", "nobody"]  # "nobody" has no profile
ORDERS = FactNeeds(event_names=frozenset({"order.completed"}), lookback=timedelta(days=7))


def _seed(shop: Shop) -> None:
    shop.profiles(
        [
            profile("c-0"),
            profile("c-1", timezone="Asia/Tokyo", consent={"email": False, "sms": True}),
            profile("c-2", timezone="America/New_York", consent={}),
        ]
    )
    shop.events(
        [
            event("o-0", "order.completed", "c-0", T0 - timedelta(days=1), total=20),
            event("o-1", "order.completed", "c-0", T0 - timedelta(days=5), total=30),
            event("v-1", "product.viewed", "c-1", T0, sku="SERUM-30"),
        ]
    )
    with shop.engine.begin() as connection:
        connection.execute(insert(MESSAGES), [_message("c-0", "m-0", "cart"), _message("c-1")])


def _message(customer_id: str, key: str = "m-1", journey_key: str | None = None) -> Any:
    return {
        "idempotency_key": key,
        "customer_id": customer_id,
        "journey_key": journey_key,
        "channel": "email",
        "message_key": "hello",
        "status": "sent",
        "send_after": T0,
        "created_at": T0,
        "decision": {},
    }


def _same(a: BatchFacts, b: BatchFacts) -> None:
    for customer_id in CUSTOMERS_IDS:
        assert a.customer(customer_id) == b.customer(customer_id)
    assert {k: v for k, v in a._consent.items() if v} == {k: v for k, v in b._consent.items() if v}
    assert {k: list(v) for k, v in a._events.items() if v} == {
        k: list(v) for k, v in b._events.items() if v
    }


def test_the_cache_loads_what_load_facts_loads(shop: Shop) -> None:
    _seed(shop)
    needs_cases = [ALL_FACTS, ORDERS, FactNeeds(profiles=True), FactNeeds(sends=True)]
    with shop.engine.connect() as connection:
        cache = FactCache({}, NOW)
        for needs in needs_cases:
            fresh = load_facts(connection, CUSTOMERS_IDS, now=NOW, segments={}, needs=needs)
            _same(cache.load(connection, CUSTOMERS_IDS, needs), fresh)
            # and again, from memory this time
            _same(cache.load(connection, CUSTOMERS_IDS[::-1], needs), fresh)


def test_the_cache_reads_each_customer_once_and_again_after_the_pass_wrote(shop: Shop) -> None:
    _seed(shop)
    cache = FactCache({}, NOW)
    with shop.engine.begin() as connection:
        first = cache.load(connection, ["c-0"], ALL_FACTS)
        assert len(cache.load(connection, ["c-0"], ORDERS)._events["c-0"]) == 2
        assert first.customer("c-0").attributes == {"first_name": "C-0"}
        assert first.customer("c-0").sends_by_day == {
            ("*", "2026-05-04"): 1,
            ("cart", "2026-05-04"): 1,
        }
        connection.execute(
            update(CUSTOMERS).where(CUSTOMERS.c.id == "c-0").values(attributes={"vip": True})
        )
        connection.execute(insert(MESSAGES), [_message("c-0", "m-2", "cart")])
        connection.execute(
            insert(EVENTS),
            [
                {
                    "event_id": "o-2",
                    "name": "order.completed",
                    "customer_id": "c-0",
                    "at": T0,
                    "received_at": T0,
                    "properties": {},
                }
            ],
        )
        # not told: the cache answers from memory, but for the recent sends (always read)
        again = cache.load(connection, ["c-0"], ALL_FACTS).customer("c-0")
        assert again.attributes == {"first_name": "C-0"}  # the profile was not re-read
        assert again.sends_by_day[("cart", "2026-05-04")] == 2
        assert len(cache.load(connection, ["c-0"], ORDERS)._events["c-0"]) == 2
        # told of events of another name: the histories of orders stay
        cache.recorded([("c-0", "journey.entered")])
        assert len(cache.load(connection, ["c-0"], ORDERS)._events["c-0"]) == 2
        cache.recorded([("c-0", "order.completed")])
        assert len(cache.load(connection, ["c-0"], ORDERS)._events["c-0"]) == 3
        cache.updated(["c-0"])
        assert cache.load(connection, ["c-0"], ALL_FACTS).customer("c-0").attributes == {
            "vip": True
        }


BOTH = {"type": "send", "message": "hello", "channel": "email"}


def test_a_later_journey_in_the_same_pass_counts_the_sends_an_earlier_one_queued(
    shop: Shop,
) -> None:
    """Two journeys on the same trigger under a global cap of one a day: the first sends,
    the second (later in the pass, same customers, their profiles from the cache) is
    capped: recent sends are read for every batch."""
    ids = ["c-0", "c-1"]
    shop.profiles([profile(c) for c in ids])
    shop.events([event(f"add-{c}", "product.added", c, T0) for c in ids])
    journeys = {
        key: journey(
            {"key": key, "trigger": {"event": "product.added"}, "steps": [{"id": "s", **BOTH}]}
        )
        for key in ("a_first", "b_second")
    }
    runner = JourneyRunner(
        shop.engine, journeys, {}, global_cap=FrequencyCap(max=1, per=timedelta(days=1))
    )
    report = runner.run(T0 + timedelta(minutes=1))
    assert report.total("entered") == 4
    assert sorted((m.journey_key, m.customer_id) for m in shop.messages()) == [
        ("a_first", "c-0"),
        ("a_first", "c-1"),
    ]
    capped = shop.log("skipped")
    assert sorted((row.journey_key, row.reason) for row in capped) == [
        ("b_second", "frequency_cap"),
        ("b_second", "frequency_cap"),
    ]
