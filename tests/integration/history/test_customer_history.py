"""One customer's history through the real store (SQLite file and PostgreSQL): found by
any key, merged ids included, one timeline across events, messages and decisions."""

from __future__ import annotations

from datetime import timedelta

from omni_journey.history import find_customer, load_history
from omni_journey.runner.passes import JourneyRunner
from tests.integration.engine.conftest import T0, Shop, event, journey, profile

CART = journey(
    {
        "key": "cart_abandonment",
        "trigger": {"event": "product.added"},
        "steps": [
            {"id": "wait", "type": "delay", "for": "1h"},
            {"id": "remind", "type": "send", "message": "cart_reminder", "channel": "email"},
        ],
    }
)


def _story(shop: Shop) -> None:
    before = T0 - timedelta(minutes=5)
    browsing = {"id": "v-1", "name": "product.viewed", "identities": {"anonymous_id": "anon-1"},
                "at": before.isoformat(), "properties": {"sku": "S-1"}}  # fmt: skip
    shop.events([browsing], now=before)
    shop.profiles([profile("c-1", anonymous_id="anon-1"), profile("c-2")])  # identify
    shop.profiles(
        [profile("c-1", phone="+4915112345678", consent={"email": True, "sms": True})],
        now=T0 + timedelta(minutes=1),
    )
    shop.events([event("add-1", "product.added", "c-1", T0, sku="S-1"),
                 event("add-2", "product.added", "c-2", T0, sku="S-2")])  # fmt: skip
    runner = JourneyRunner(shop.engine, {"cart_abandonment": CART}, {})
    runner.run(T0 + timedelta(minutes=2))
    runner.run(T0 + timedelta(hours=2))


def test_any_key_finds_the_survivor(shop: Shop) -> None:
    _story(shop)
    with shop.engine.connect() as connection:
        anonymous = find_customer(connection, "anon-1", "DE")
        assert anonymous is not None and anonymous.id == "c-1"
        for key in ("c-1", " c-1 ", "c-1@EXAMPLE.com", "+49 151 12345678", "0151 12345678"):
            found = find_customer(connection, key, "DE")
            assert found is not None and found.id == "c-1", key
        history = load_history(connection, anonymous)
        [merged] = history.merged_ids  # the anonymous customer the browsing created
        again = find_customer(connection, merged, "DE")
        assert again is not None and again.id == "c-1"  # an old id finds its survivor
        assert find_customer(connection, "nobody@example.com", "DE") is None
        assert find_customer(connection, "", "DE") is None


def test_one_timeline_across_channels_newest_first(shop: Shop) -> None:
    _story(shop)
    with shop.engine.connect() as connection:
        customer = find_customer(connection, "c-1", "DE")
        history = load_history(connection, customer)
    data = history.as_dict()
    assert data["customer"]["customer_id"] == "c-1"
    assert data["customer"]["phone"] == "+4915112345678"
    kinds = {(i["kind"], i["value"]) for i in data["identities"]}
    assert {("email", "c-1@example.com"), ("anonymous_id", "anon-1"),
            ("phone", "+4915112345678")} <= kinds  # fmt: skip
    assert ("customer_id", history.merged_ids[0]) in kinds
    assert data["consent"]["sms"]["granted"] is True
    assert data["consent"]["sms"]["since"].startswith(
        (T0 + timedelta(minutes=1)).date().isoformat()
    )

    timeline = data["timeline"]
    ats = [item["at"] for item in timeline]
    assert ats == sorted(ats, reverse=True)
    seen = [(i["kind"], i["name"]) for i in timeline]
    assert ("event", "product.viewed") in seen  # anonymous browsing, before the merge
    assert ("event", "product.added") in seen
    assert ("message", "cart_reminder") in seen
    assert ("journey", "entered") in seen and ("journey", "sent") in seen
    [message] = [i for i in timeline if i["kind"] == "message"]
    assert (message["channel"], message["journey"], message["step"]) == (
        "email", "cart_abandonment", "remind")  # fmt: skip
    assert message["detail"]["status"] == "pending"
    [sent] = [i for i in timeline if i["kind"] == "journey" and i["name"] == "sent"]
    assert sent["channel"] == "email"
    assert sent["detail"]["inputs"]["idempotency_key"] == message["detail"]["idempotency_key"]
    assert all("add-2" not in str(i["detail"]) for i in timeline)  # nobody else's history


def test_paging_walks_the_whole_timeline(shop: Shop) -> None:
    _story(shop)
    with shop.engine.connect() as connection:
        customer = find_customer(connection, "c-1", "DE")
        whole = load_history(connection, customer, limit=100).timeline
        pages, offset = [], 0
        while True:
            page = load_history(connection, customer, limit=2, offset=offset)
            pages += page.timeline
            offset += 2
            if not page.more:
                break
    assert len(whole) >= 5
    assert pages == list(whole)
