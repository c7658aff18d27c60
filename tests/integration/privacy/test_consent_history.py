"""Consent with when and how it changed: every change of the answer is logged, with its
source, by whichever writer changed it; a repeat is not a change; a merge brings the
merged customer's history along. Real store (SQLite file and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from omni_journey.delivery.optout import handle_inbound_sms
from omni_journey.history import find_customer, load_history
from omni_journey.identity.changes import record_consent
from tests.integration.engine.conftest import T0, Shop, profile

PHONE = "+4915112345678"


def test_every_change_is_logged_with_its_source(shop: Shop) -> None:
    visitor = {"id": "v-1", "name": "product.viewed", "at": T0.isoformat(),
               "identities": {"anonymous_id": "anon-1"}, "properties": {}}  # fmt: skip
    shop.events([visitor])
    shop.profiles([{"anonymous_id": "anon-1", "email": "early@example.com",
                    "consent": {"push": True}}])  # fmt: skip
    first = T0 + timedelta(minutes=1)
    shop.profiles([profile("c-1", phone=PHONE, consent={"email": True, "sms": True})], now=first)
    shop.profiles([profile("c-1", consent={"email": True, "sms": True})], now=first)  # repeat
    handle_inbound_sms(shop.engine, phone=PHONE, text="STOP", now=T0 + timedelta(hours=1),
                       inbound_id="i-1")  # fmt: skip
    handle_inbound_sms(shop.engine, phone=PHONE, text="STOP", now=T0 + timedelta(hours=2),
                       inbound_id="i-2")  # a repeat changes nothing  # fmt: skip
    handle_inbound_sms(shop.engine, phone=PHONE, text="start", now=T0 + timedelta(hours=3),
                       inbound_id="i-3")  # fmt: skip
    with shop.engine.begin() as connection:
        record_consent(connection, "c-1", "email", granted=False, source="unsubscribe",
                       at=T0 + timedelta(hours=4), only_if_changed=True)  # fmt: skip
    shop.profiles([profile("c-1", anonymous_id="anon-1", consent={"email": True})],
                  now=T0 + timedelta(hours=5))  # fmt: skip

    with shop.engine.connect() as connection:
        history = load_history(connection, find_customer(connection, "c-1", "DE"))
    consent = history.as_dict()["consent"]
    changes = {
        channel: [(c["value"], c["source"]) for c in state["history"]]
        for channel, state in consent.items()
    }
    assert changes["sms"] == [(True, "profile"), (False, "sms_keyword"), (True, "sms_keyword")]
    assert changes["email"] == [(True, "profile"), (False, "unsubscribe"), (True, "profile")]
    assert changes["push"] == [(True, "profile")]  # the anonymous customer's, merged in
    assert consent["push"]["granted"] is True
    assert consent["email"]["granted"] is True and consent["sms"]["granted"] is True
    stops = [c for c in consent["sms"]["history"] if c["value"] is False]
    assert [c["at"][:16] for c in stops] == [(T0 + timedelta(hours=1)).isoformat()[:16]]
    assert consent["sms"]["history"][1]["previous"] is True
    timeline = [(i.kind, i.name, i.channel, i.detail["source"])
                for i in history.timeline if i.kind == "consent"]  # fmt: skip
    assert timeline[0] == ("consent", "granted", "email", "profile")  # newest first
    assert ("consent", "withdrawn", "sms", "sms_keyword") in timeline
    assert len(timeline) == 7
