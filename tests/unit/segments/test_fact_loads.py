"""The pure parts of loading facts: a customer's facts from their loaded rows, and how
far back event history is read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from omni_journey.engine import FactNeeds
from omni_journey.engine.types import CustomerFacts
from omni_journey.reach import UNREACHABLE
from omni_journey.segments.fact_loads import ANY_EVENT, customer_facts
from omni_journey.segments.facts import ALL_FACTS, history_since
from omni_journey.spec.conditions import CHANNELS

NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
TOKYO = ZoneInfo("Asia/Tokyo")


def test_an_unknown_customer_is_unreachable_in_utc() -> None:
    assert customer_facts("c-1", None, None) == CustomerFacts(
        customer_id="c-1", timezone="UTC", eligible=dict.fromkeys(CHANNELS, UNREACHABLE)
    )


def test_sends_count_by_local_day_for_the_journey_and_for_all() -> None:
    eligible = {"email": None, "sms": "no_consent"}
    profile = (TOKYO, {"tier": "gold"}, eligible)
    sends = [
        ("cart", datetime(2026, 5, 3, 14, 0, tzinfo=UTC)),  # 23:00 in Tokyo: the 3rd
        ("cart", datetime(2026, 5, 3, 16, 0, tzinfo=UTC)),  # 01:00 in Tokyo: the 4th
        (None, datetime(2026, 5, 3, 16, 30, tzinfo=UTC)),  # no journey: counts for all
    ]
    facts = customer_facts("c-1", profile, sends)
    assert facts.timezone == "Asia/Tokyo"
    assert facts.attributes == {"tier": "gold"}
    assert facts.attributes is not profile[1]  # the engine's own copy
    assert facts.eligible == eligible
    assert facts.sends_by_day == {
        ("*", "2026-05-03"): 1,
        ("cart", "2026-05-03"): 1,
        ("*", "2026-05-04"): 2,
        ("cart", "2026-05-04"): 1,
    }


def test_sends_not_loaded_count_nothing() -> None:
    facts = customer_facts("c-1", (TOKYO, {}, {}), None)
    assert facts.sends_by_day == {}


def test_history_goes_back_the_declared_look_back_else_the_default() -> None:
    orders = FactNeeds(event_names=frozenset({"order.completed"}), lookback=timedelta(days=30))
    assert history_since(orders, NOW) == NOW - timedelta(days=30)
    assert history_since(orders, NOW, timedelta(days=2)) == NOW - timedelta(days=2)
    unbounded = FactNeeds(event_names=frozenset({"order.completed"}))
    assert history_since(unbounded, NOW) == NOW - timedelta(days=400)
    assert ALL_FACTS.event_names == ANY_EVENT
    any_event = FactNeeds(event_names=ANY_EVENT, lookback=timedelta(days=1))
    assert history_since(any_event, NOW) == NOW - timedelta(days=400)  # any name: the default
