"""Branch, split, update, webhook and exit steps through the real store (SQLite and
PostgreSQL), and send windows: what the runner writes for each."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import select

from omni_journey.engine import split_bucket
from omni_journey.runner.passes import JourneyRunner
from omni_journey.spec.models import SegmentSpec
from omni_journey.store.core import CUSTOMERS, ENROLLMENTS
from tests.integration.engine.conftest import T0, Shop, event, journey, profile

GOLD = SegmentSpec.model_validate({"key": "gold", "match": {"attribute": "tier", "equals": "gold"}})

TOUR = journey(
    {
        "key": "tour",
        "trigger": {"event": "product.viewed"},
        "steps": [
            {
                "id": "route",
                "type": "branch",
                "arms": [
                    {"when": {"segment": "gold"}, "next": "vip"},
                    {"when": {"event": "order.completed", "within": "30d"}, "next": "buyer"},
                ],
                "else": "test",
            },
            {"id": "vip", "type": "update", "set": {"last_route": "vip"}, "next": "hook"},
            {"id": "buyer", "type": "update", "set": {"last_route": "buyer"}, "next": "done"},
            {
                "id": "test",
                "type": "split",
                "variants": [
                    {"name": "a", "weight": 1, "next": "mail_a"},
                    {"name": "b", "weight": 1, "next": "done"},
                ],
            },
            {
                "id": "mail_a",
                "type": "send",
                "message": "viewed_product",
                "channel": "email",
                "next": "done",
            },
            {
                "id": "hook",
                "type": "webhook",
                "url": "https://crm.example.com/hooks/vip",
                "body": {"reason": "vip_browse"},
                "next": "done",
            },
            {"id": "done", "type": "exit", "reason": "tour_over"},
        ],
    }
)


def test_branch_split_update_webhook_and_exit(shop: Shop) -> None:
    others = [f"c-{i}" for i in range(40)]
    shop.profiles(
        [profile("gold-1", attributes={"tier": "gold"}), profile("buyer-1")]
        + [profile(c) for c in others]
    )
    shop.events([event("old-order", "order.completed", "buyer-1", T0 - timedelta(days=3))])
    ids = ["gold-1", "buyer-1", *others]
    shop.events([event(f"view-{c}", "product.viewed", c, T0) for c in ids])
    runner = JourneyRunner(shop.engine, {"tour": TOUR}, {"gold": GOLD})
    runner.run(T0 + timedelta(minutes=1))

    with shop.engine.connect() as connection:
        attributes = dict(connection.execute(select(CUSTOMERS.c.id, CUSTOMERS.c.attributes)).all())
        ended = Counter(connection.execute(select(ENROLLMENTS.c.end_reason)).scalars())
    assert attributes["gold-1"]["last_route"] == "vip"
    assert attributes["buyer-1"]["last_route"] == "buyer"
    assert all("last_route" not in attributes[c] for c in others)
    assert ended == Counter({"tour_over": len(ids)})

    messages = shop.messages()
    hooks = [m for m in messages if m.channel == "webhook"]
    assert [(m.customer_id, m.decision["url"], m.decision["body"]) for m in hooks] == [
        ("gold-1", "https://crm.example.com/hooks/vip", {"reason": "vip_browse"})
    ]
    in_a = {c for c in others if split_bucket("tour", "test", c) < 0.5}
    assert 0 < len(in_a) < len(others)
    assert {m.customer_id for m in messages if m.channel == "email"} == in_a

    runner.run(T0 + timedelta(hours=1))  # a second pass changes nothing
    assert len(shop.messages()) == len(messages)


def test_send_window_defers_to_the_next_opening(shop: Shop) -> None:
    weekdays = journey(
        {
            "key": "office_hours",
            "trigger": {"event": "product.viewed"},
            "send_window": {
                "days": ["mon", "tue", "wed", "thu", "fri"],
                "start": "09:00",
                "end": "17:00",
            },
            "steps": [
                {"id": "nudge", "type": "send", "message": "viewed_product", "channel": "email"}
            ],
        }
    )
    shop.profiles([profile("c-0", timezone="UTC")])
    saturday = T0 + timedelta(days=5)  # T0 is a Monday 10:00 UTC
    shop.events([event("view-c-0", "product.viewed", "c-0", saturday)], now=saturday)
    runner = JourneyRunner(shop.engine, {"office_hours": weekdays}, {})
    runner.run(saturday)
    assert shop.messages() == []
    monday = saturday + timedelta(days=2, hours=-1)  # Monday 09:00
    runner.run(monday)
    assert [(m.customer_id, m.send_after) for m in shop.messages()] == [("c-0", monday)]


def test_frequency_caps_and_consent_are_enforced_through_the_store(shop: Shop) -> None:
    capped = journey(
        {
            "key": "chatty",
            "trigger": {"event": "product.viewed"},
            "entry": {"re_entry": "always"},
            "frequency_cap": {"max": 1, "per": "1d"},
            "steps": [
                {"id": "nudge", "type": "send", "message": "viewed_product", "channel": "email"}
            ],
        }
    )
    shop.profiles(
        [
            profile("c-0", timezone="UTC"),
            profile("quiet", timezone="UTC", consent={"email": False, "sms": False, "push": False}),
        ]
    )
    runner = JourneyRunner(shop.engine, {"chatty": capped}, {})
    for hour in range(3):  # three entries on the same local day
        at = T0 + timedelta(hours=hour)
        shop.events(
            [event(f"view-{c}-{hour}", "product.viewed", c, at) for c in ("c-0", "quiet")], now=at
        )
        runner.run(at + timedelta(minutes=1))
    assert [m.customer_id for m in shop.messages()] == ["c-0"]
    reasons = Counter((row.customer_id, row.reason) for row in shop.log("skipped"))
    assert reasons == Counter({("c-0", "frequency_cap"): 2, ("quiet", "no_consent"): 3})
    next_day = T0 + timedelta(days=1)
    shop.events([event("view-c-0-next", "product.viewed", "c-0", next_day)], now=next_day)
    runner.run(next_day + timedelta(minutes=1))
    assert [m.customer_id for m in shop.messages()] == ["c-0", "c-0"]


def test_sends_and_webhooks_queued_in_one_batch_keep_their_render_context(shop: Shop) -> None:
    both = journey(
        {
            "key": "both",
            "trigger": {"event": "product.viewed"},
            "steps": [
                {"id": "nudge", "type": "send", "message": "viewed_product", "channel": "email"},
                {"id": "hook", "type": "webhook", "url": "https://crm.example.com/hooks/x"},
            ],
        }
    )
    shop.profiles([profile("c-0"), profile("c-1")])
    shop.events(
        [event(f"view-{c}", "product.viewed", c, T0, sku="SERUM-30") for c in ("c-0", "c-1")]
    )
    JourneyRunner(shop.engine, {"both": both}, {}).run(T0 + timedelta(minutes=1))
    rows = {(m.customer_id, m.channel): m for m in shop.messages()}
    assert set(rows) == {(c, ch) for c in ("c-0", "c-1") for ch in ("email", "webhook")}
    assert rows[("c-1", "email")].render_context["event"] == {"sku": "SERUM-30"}
    assert rows[("c-1", "webhook")].render_context == {}
