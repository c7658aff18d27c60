"""``explain``'s decision record through the real store (SQLite file and PostgreSQL):
every decision of one customer in one journey, in order, with the guard behind it."""

from __future__ import annotations

from datetime import timedelta

from omni_journey.history import find_customer, journey_decisions, why_not_entered
from omni_journey.runner.passes import JourneyRunner
from omni_journey.store.core import JOURNEY_CURSORS, JOURNEY_SHARD_CURSORS
from omni_journey.store.shards import Shard
from tests.integration.engine.conftest import T0, Shop, event, journey, profile

PROMO = journey(
    {
        "key": "promo",
        "trigger": {"event": "product.added"},
        "entry": {"re_entry": "never"},
        "goal": {"event": "order.completed", "within": "3d"},
        "send_window": {"start": "09:00", "end": "18:00"},
        "steps": [
            {"id": "text", "type": "send", "message": "cart_reminder", "channel": "sms"},
            {"id": "wait", "type": "delay", "for": "8h"},
            {"id": "mail", "type": "send", "message": "cart_reminder", "channel": "email"},
            {"id": "bought", "type": "wait_for", "event": "order.completed", "timeout": "1d"},
        ],
    }
)


def promo_story(shop: Shop) -> None:
    """An SMS skipped for want of consent, an email deferred by the send window and
    sent the next morning, an order converting, a second trigger refused."""
    shop.profiles([profile("c-1", phone="+4915112345678")])  # no SMS consent
    shop.events([event("add-1", "product.added", "c-1", T0, sku="S-1")])
    runner = JourneyRunner(shop.engine, {"promo": PROMO}, {})
    runner.run(T0 + timedelta(minutes=1))  # 11:01 in Berlin: enters, SMS skipped
    runner.run(T0 + timedelta(hours=8, minutes=5))  # 20:05 in Berlin: deferred
    next_morning = T0 + timedelta(hours=21, minutes=5)  # Tuesday 09:05 in Berlin
    runner.run(next_morning)
    shop.events([event("o-1", "order.completed", "c-1", next_morning + timedelta(minutes=10)),
                 event("add-2", "product.added", "c-1", next_morning + timedelta(minutes=20))],
                now=next_morning + timedelta(minutes=20))  # fmt: skip
    runner.run(next_morning + timedelta(minutes=30))


def test_every_decision_in_order_with_its_guard(shop: Shop) -> None:
    promo_story(shop)
    with shop.engine.connect() as connection:
        customer = find_customer(connection, "c-1@example.com", "DE")
        decisions = journey_decisions(connection, [customer.id], "promo", PROMO)
    outcomes = [(d.step, d.outcome, d.reason) for d in decisions]
    assert outcomes[0] == (None, "entered", None)
    assert ("text", "skipped", "no_consent") in outcomes
    assert ("wait", "waiting", "delay for 8h") in outcomes
    [deferred] = [d for d in decisions if d.outcome == "deferred"]
    assert deferred.step == "mail" and deferred.reason is not None
    assert deferred.inputs["until"].startswith((T0 + timedelta(hours=21)).date().isoformat())
    [sent] = [d for d in decisions if d.outcome == "sent"]
    assert (sent.step, sent.reason) == ("mail", "email")
    assert outcomes.index(("mail", "sent", "email")) > outcomes.index(
        ("mail", "deferred", deferred.reason)
    )
    assert ("bought", "waiting", "wait_for order.completed (timeout 1d)") in outcomes
    [converted] = [d for d in decisions if d.outcome == "converted"]
    assert converted.event_id == "o-1"
    [refused] = [d for d in decisions if d.outcome == "refused"]
    assert refused.step is None and refused.reason in ("re_entry", "already_active")
    assert refused.event_id == "add-2" or refused.inputs  # the trigger or the rule's data
    ats = [d.at for d in decisions]
    assert ats == sorted(ats)


def test_a_customer_who_never_entered_is_told_the_rule_that_keeps_them_out(shop: Shop) -> None:
    shop.profiles([profile("c-1"), profile("c-2"), profile("c-3")])
    shop.events([event("add-1", "product.added", "c-1", T0, sku="S-1"),
                 event("view-2", "product.viewed", "c-2", T0, sku="S-1")])  # fmt: skip
    trigger = {"event": "product.added", "where": {"sku": "S-9"}}
    filtered = journey({**PROMO.model_dump(by_alias=True, mode="json"), "trigger": trigger})
    with shop.engine.connect() as connection:
        assert journey_decisions(connection, ["c-1"], "promo", PROMO) == []
        reason, inputs = why_not_entered(connection, ["c-2"], PROMO)
        assert (reason, inputs) == ("no_trigger_event", {"trigger": "product.added", "events": 0})
        reason, inputs = why_not_entered(connection, ["c-1"], filtered)
        assert reason == "trigger_filter" and inputs["matching"] == 0
        reason, inputs = why_not_entered(connection, ["c-1"], PROMO)
        assert reason == "trigger_not_seen"  # no pass has read it yet
        assert inputs["last_event_id"] == "add-1" and inputs["journey_read_up_to_seq"] is None


def test_a_journey_run_as_shards_reports_the_cursor_of_the_customers_shard(shop: Shop) -> None:
    """Run as several shards, a journey's own cursor stays behind; ``explain`` reads how
    far the shard that holds the customer has read instead."""
    shop.profiles([profile("c-1")])
    shop.events([event("add-1", "product.added", "c-1", T0, sku="S-1")])
    mine = next(s for s in Shard(1, 3).all() if s.holds("c-1"))
    with shop.engine.begin() as connection:
        connection.execute(
            JOURNEY_CURSORS.insert(),
            {"journey_key": "promo", "last_event_seq": 0, "shards": 3, "updated_at": T0},
        )
        connection.execute(
            JOURNEY_SHARD_CURSORS.insert(),
            [
                {"journey_key": "promo", "shards": 3, "shard": s.index, "updated_at": T0,
                 "last_event_seq": 7 if s == mine else 99}
                for s in mine.all()
            ],
        )  # fmt: skip
    with shop.engine.connect() as connection:
        reason, inputs = why_not_entered(connection, ["c-1"], PROMO)
    assert reason == "trigger_not_seen"
    assert inputs["journey_read_up_to_seq"] == 7
