"""Journeys driven through the real store (SQLite file and PostgreSQL) by the runner."""

from __future__ import annotations

import threading
from datetime import timedelta

from omni_journey.runner.passes import JourneyRunner
from omni_journey.spec.models import SegmentSpec
from tests.integration.engine.conftest import T0, Shop, event, journey, profile

CART = journey(
    {
        "key": "cart_abandonment",
        "trigger": {"event": "product.added"},
        "exit_when": [{"event": "order.completed"}],
        "goal": {"event": "order.completed", "within": "3d"},
        "steps": [
            {"id": "wait", "type": "delay", "for": "1h"},
            {"id": "remind", "type": "send", "message": "cart_reminder", "channel": "email"},
            {"id": "bought", "type": "wait_for", "event": "order.completed", "timeout": "1d"},
        ],
    }
)


def _cart_shop(shop: Shop, customers: int = 10) -> list[str]:
    ids = [f"c-{i}" for i in range(customers)]
    shop.profiles([profile(c) for c in ids])
    shop.events([event(f"add-{c}", "product.added", c, T0, sku="SERUM-30") for c in ids])
    return ids


def test_cart_abandonment_reminds_only_those_who_did_not_buy(shop: Shop) -> None:
    ids = _cart_shop(shop)
    runner = JourneyRunner(shop.engine, {"cart_abandonment": CART}, {})
    report = runner.run(T0 + timedelta(minutes=1))
    assert report.total("entered") == 10
    buyers = ids[::2]
    shop.events(
        [event(f"order-{c}", "order.completed", c, T0 + timedelta(minutes=30)) for c in buyers],
        now=T0 + timedelta(minutes=31),
    )
    runner.run(T0 + timedelta(minutes=31))
    runner.run(T0 + timedelta(hours=2))
    sent_to = sorted(m.customer_id for m in shop.messages())
    assert sent_to == sorted(set(ids) - set(buyers))
    assert {m.channel for m in shop.messages()} == {"email"}
    exits = {row.customer_id: row.reason for row in shop.log("exited")}
    assert {c: exits[c] for c in buyers} == dict.fromkeys(buyers, "exit_when:order.completed")


def test_a_second_pass_and_an_overlapping_pass_never_queue_twice(shop: Shop) -> None:
    _cart_shop(shop)
    runner = JourneyRunner(shop.engine, {"cart_abandonment": CART}, {})
    runner.run(T0 + timedelta(minutes=1))
    later = T0 + timedelta(hours=2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            JourneyRunner(shop.engine, {"cart_abandonment": CART}, {}).run(later)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    runner.run(later)
    keys = [m.idempotency_key for m in shop.messages()]
    assert len(keys) == 10
    assert len(set(keys)) == 10


def test_conversion_is_recorded_with_last_touch(shop: Shop) -> None:
    _cart_shop(shop, customers=2)
    runner = JourneyRunner(shop.engine, {"cart_abandonment": CART}, {})
    runner.run(T0 + timedelta(minutes=1))
    runner.run(T0 + timedelta(hours=2))
    shop.events(
        [event("order-c-0", "order.completed", "c-0", T0 + timedelta(hours=5))],
        now=T0 + timedelta(hours=5),
    )
    runner.run(T0 + timedelta(hours=5))
    conversions = shop.log("converted")
    assert [(c.customer_id, c.event_id, c.step_id, c.reason) for c in conversions] == [
        ("c-0", "order-c-0", "remind", "cart_reminder")
    ]


def test_quiet_hours_move_sends_in_each_customers_time_zone(shop: Shop) -> None:
    quiet = journey(
        {
            "key": "night_owl",
            "trigger": {"event": "product.viewed"},
            "quiet_hours": {"start": "21:00", "end": "08:00"},
            "steps": [
                {"id": "nudge", "type": "send", "message": "viewed_product", "channel": "email"}
            ],
        }
    )
    zones = {"ny": "America/New_York", "berlin": "Europe/Berlin", "tokyo": "Asia/Tokyo"}
    shop.profiles([profile(c, timezone=tz) for c, tz in zones.items()])
    at = T0.replace(hour=2)  # 22:00 New York, 04:00 Berlin, 11:00 Tokyo
    shop.events([event(f"view-{c}", "product.viewed", c, at) for c in zones], now=at)
    runner = JourneyRunner(shop.engine, {"night_owl": quiet}, {})
    runner.run(at)
    assert [m.customer_id for m in shop.messages()] == ["tokyo"]
    runner.run(at + timedelta(hours=4))  # 08:00 Berlin
    runner.run(at + timedelta(hours=10))  # 08:00 New York
    sends = {m.customer_id: m.send_after for m in shop.messages()}
    assert set(sends) == set(zones)
    assert sends["berlin"] == at + timedelta(hours=4)
    assert sends["ny"] == at + timedelta(hours=10)


def test_a_purchase_after_the_last_step_still_converts(shop: Shop) -> None:
    short = journey(
        {
            "key": "one_shot",
            "trigger": {"event": "product.added"},
            "goal": {"event": "order.completed", "within": "3d"},
            "steps": [
                {"id": "nudge", "type": "send", "message": "cart_reminder", "channel": "email"}
            ],
        }
    )
    shop.profiles([profile("c-0")])
    shop.events([event("add-c-0", "product.added", "c-0", T0)])
    runner = JourneyRunner(shop.engine, {"one_shot": short}, {})
    runner.run(T0 + timedelta(minutes=1))
    assert [row.reason for row in shop.log("exited")] == ["completed"]
    bought = T0 + timedelta(days=1)
    shop.events([event("order-c-0", "order.completed", "c-0", bought)], now=bought)
    runner.run(bought)
    runner.run(bought + timedelta(hours=1))
    conversions = shop.log("converted")
    assert [(c.customer_id, c.step_id, c.reason) for c in conversions] == [
        ("c-0", "nudge", "cart_reminder")
    ]


VIP = SegmentSpec.model_validate({"key": "vip", "match": {"attribute": "tier", "equals": "gold"}})
WELCOME_VIP = journey(
    {
        "key": "welcome_vip",
        "trigger": {"segment": "vip"},
        "steps": [{"id": "hello", "type": "send", "message": "welcome", "channel": "email"}],
    }
)


def test_entering_a_segment_enters_the_journey(shop: Shop) -> None:
    shop.profiles([profile("c-0", attributes={"tier": "gold"}), profile("c-1")])
    runner = JourneyRunner(shop.engine, {"welcome_vip": WELCOME_VIP}, {"vip": VIP})
    runner.run(T0)  # the first evaluation is the baseline: nobody "entered" yet
    assert shop.messages() == []
    shop.profiles([profile("c-1", attributes={"tier": "gold"})], now=T0 + timedelta(hours=1))
    runner.run(T0 + timedelta(hours=1))
    runner.run(T0 + timedelta(hours=2))
    assert [m.customer_id for m in shop.messages()] == ["c-1"]


def test_a_scheduled_audience_enters_the_segment_once_per_period(shop: Shop) -> None:
    weekly = journey(
        {
            "key": "weekly_vip",
            "trigger": {"schedule": {"every": "1w", "at": "09:00"}, "segment": "vip"},
            "entry": {"re_entry": "always"},
            "steps": [{"id": "news", "type": "send", "message": "welcome", "channel": "email"}],
        }
    )
    shop.profiles(
        [profile(f"c-{i}", attributes={"tier": "gold"}) for i in range(3)] + [profile("c-9")]
    )
    runner = JourneyRunner(shop.engine, {"weekly_vip": weekly}, {"vip": VIP})
    runner.run(T0)  # 10:00, after today's 09:00: due now
    runner.run(T0 + timedelta(hours=5))  # same week: not again
    assert sorted(m.customer_id for m in shop.messages()) == ["c-0", "c-1", "c-2"]
    runner.run(T0 + timedelta(days=7))  # a week on, past 09:00: due again
    assert len(shop.messages()) == 6


def test_old_trigger_events_enter_nobody(shop: Shop) -> None:
    _cart_shop(shop, customers=2)  # carts at T0
    runner = JourneyRunner(shop.engine, {"cart_abandonment": CART}, {})
    report = runner.run(T0 + timedelta(days=2))  # first seen two days later
    assert report.total("entered") == 0
    shop.events([event("add-late", "product.added", "c-0", T0 + timedelta(days=2))])
    assert runner.run(T0 + timedelta(days=2, minutes=1)).total("entered") == 1
