"""The demo shop: seeded, clock-free, shaped as docs/data-formats.md describes, answering sends."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import numpy as np

from omni_journey.lab.shop import START, SentMessage, Shop, sent_events


def _small() -> Shop:
    return Shop(seed=3, customers=300)


def test_the_same_seed_makes_the_same_shop() -> None:
    a_profiles, a_events = _small().generate(30)
    b_profiles, b_events = _small().generate(30)
    assert a_profiles == b_profiles
    assert a_events == b_events
    assert Shop(seed=4, customers=300).generate(30)[1] != a_events


def test_profiles_and_events_follow_the_contract() -> None:
    profiles, events = _small().generate(30)
    first = profiles[0]
    assert set(first) >= {"customer_id", "timezone", "locale", "consent", "attributes"}
    assert set(first["consent"]) == {"email", "sms", "push", "whatsapp"}
    assert {"tier", "age_band"} <= set(first["attributes"])
    names = Counter(e["name"] for e in events)
    assert names["product.viewed"] > 0 and names["order.completed"] > 0
    assert names["message.sent"] > 0 and names["message.opened"] > 0
    assert all(e["at"] < START.isoformat() for e in events if e["name"] == "product.viewed")
    assert len({e["id"] for e in events}) == len(events)
    order = next(e for e in events if e["name"] == "order.completed")
    assert {"order_id", "total", "currency", "products"} <= set(order["properties"])


def test_sends_are_answered_with_feedback_naming_the_message() -> None:
    shop = _small()
    shop.generate(30)
    eligible = shop.eligible(shop.customer_ids)
    now = START + timedelta(hours=10)
    sent = [
        SentMessage(1000 + i, cid, "email", "cart_reminder", now)
        for i, cid in enumerate(shop.customer_ids)
        if eligible[i, 0]
    ]
    answers = shop.respond(sent, now)
    kinds = Counter(e["name"] for e in answers)
    assert kinds["message.delivered"] + kinds["message.bounced"] == len(sent)
    assert kinds["message.opened"] > 0
    ids = {s.message_id for s in sent}
    assert all(
        e["properties"]["message_id"] in ids for e in answers if e["name"].startswith("message.")
    )
    assert all(e["at"] >= now.isoformat() for e in answers)
    assert sent_events(sent[:1])[0]["id"] == f"message.sent:{sent[0].message_id}"


def test_unsubscribes_become_consent_statements() -> None:
    shop = Shop(seed=5, customers=2000)
    shop.generate(7)
    now = START + timedelta(hours=10)
    reach = shop.eligible(shop.customer_ids)
    ids = [c for c, row in zip(shop.customer_ids, reach, strict=True) if row[1]]
    for week in range(4):
        at = now + timedelta(days=week)
        shop.respond([SentMessage(f"{week}-{c}", c, "sms", "we_miss_you", at) for c in ids], at)
    updates = shop.consent_updates()
    assert updates and all(u["consent"] == {"sms": False} for u in updates)
    assert shop.consent_updates() == []
    gone = {u["customer_id"] for u in updates}
    assert not shop.eligible(sorted(gone))[:, 1].any()


def test_truth_is_a_probability_per_channel_and_fatigue_lowers_it() -> None:
    shop = _small()
    shop.generate(30)
    now = START + timedelta(hours=10)
    ids = shop.customer_ids[:50]
    fresh = shop.true_uplift(ids, ["cart_reminder"] * 50, now)
    assert fresh.shape == (50, 4)
    assert ((fresh >= 0) & (fresh < 1)).all()
    shop.respond([SentMessage(f"x{c}", c, "email", "cart_reminder", now) for c in ids], now)
    tired = shop.true_uplift(ids, ["cart_reminder"] * 50, now + timedelta(hours=1))
    assert (tired[:, 0] < fresh[:, 0]).all()
    np.testing.assert_allclose(tired[:, 1], fresh[:, 1], rtol=0.2)
