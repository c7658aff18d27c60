"""The decision record: every kind of decision the runner takes is stored in
``journey_log`` with its reason and the inputs that decided it, queryable by customer
(SQLite file and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from omni_journey.runner.passes import JourneyRunner
from omni_journey.spec.models import SegmentSpec
from omni_journey.store.core import JOURNEY_LOG
from tests.integration.engine.conftest import T0, Shop, event, journey, profile

VIP = SegmentSpec.model_validate({"key": "vip", "match": {"attribute": "tier", "equals": "gold"}})

NUDGE = journey(
    {
        "key": "nudge",
        "trigger": {"event": "product.viewed"},
        "entry": {"segment": "vip", "re_entry": "never"},
        "exit_when": [{"event": "account.closed"}],
        "goal": {"event": "order.completed", "within": "3d"},
        "quiet_hours": {"start": "21:00", "end": "08:00"},
        "frequency_cap": {"max": 1, "per": "1d"},
        "steps": [
            {"id": "hello", "type": "send", "message": "viewed_product", "channel": "email"},
            {"id": "again", "type": "send", "message": "viewed_product", "channel": "email"},
            {"id": "wait", "type": "wait_for", "event": "order.completed", "timeout": "2d"},
        ],
    }
)


def _history(shop: Shop, customer_id: str) -> list[Any]:
    """One customer's decisions in one journey, oldest first: the question ``explain``
    asks of the record (served by the customer index)."""
    log = JOURNEY_LOG.c
    with shop.engine.connect() as connection:
        return list(
            connection.execute(
                select(JOURNEY_LOG)
                .where(log.customer_id == customer_id, log.journey_key == "nudge")
                .order_by(log.at, log.id)
            )
        )


def test_every_decision_kind_is_recorded_with_its_reason_and_inputs(shop: Shop) -> None:
    gold = {"attributes": {"tier": "gold"}}
    shop.profiles(
        [
            profile("ana", **gold),
            profile("ben", **{"attributes": {"tier": "silver"}}),
            profile("cy", **gold, consent={"email": False, "sms": False, "push": False}),
            profile("dee", **gold, timezone="Asia/Tokyo"),  # 19:00 UTC = 04:00 in Tokyo
        ]
    )
    at = T0.replace(hour=19)  # 04:00 in Tokyo: quiet hours
    morning = T0  # 10:00 UTC: 12:00 Berlin, 19:00 Tokyo
    runner = JourneyRunner(shop.engine, {"nudge": NUDGE}, {"vip": VIP})
    views = [event(f"v-{c}", "product.viewed", c, morning) for c in ("ana", "ben", "cy")]
    shop.events(views)
    runner.run(morning + timedelta(minutes=1))
    shop.events([event("v-dee", "product.viewed", "dee", at)])
    runner.run(at + timedelta(minutes=1))

    ana = {(row.kind, row.step_id): row for row in _history(shop, "ana")}
    entered = ana[("entered", None)]
    assert entered.event_id == "v-ana" and entered.enrollment_id is not None
    sent = ana[("sent", "hello")]
    assert sent.reason == "email"
    assert sent.detail["decision"]["channel"] == "email"
    assert sent.detail["decision"]["policy"]
    assert "propensity" in sent.detail["decision"]
    assert sent.detail["eligibility"] == {"email": "eligible"}
    assert sent.detail["candidates"] == ["email"]
    capped = ana[("skipped", "again")]
    assert capped.reason == "frequency_cap"
    assert capped.detail["cap"] == {"scope": "journey", "max": 1, "per": "1d", "sent": 1}
    assert ("step", "wait") in ana  # waiting for the order

    (ben,) = _history(shop, "ben")
    assert (ben.kind, ben.step_id, ben.reason) == ("skipped", "(entry)", "entry_segment")
    assert ben.detail == {"event_id": "v-ben", "segment": "vip"}

    cy = {(row.kind, row.step_id): row for row in _history(shop, "cy")}
    refused = cy[("skipped", "hello")]
    assert refused.reason == "no_consent"
    assert refused.detail["eligibility"] == {"email": "no_consent"}

    dee = {(row.kind, row.step_id): row for row in _history(shop, "dee")}
    deferred = dee[("deferred", "hello")]
    assert deferred.reason == "quiet_hours"
    assert deferred.detail["until"].startswith((T0 + timedelta(hours=13)).date().isoformat())
    assert deferred.detail["timezone"] == "Asia/Tokyo"
    assert deferred.detail["local_time"] == "04:01"  # the pass ran at 19:01 UTC
    assert deferred.detail["quiet_hours"] == "21:00-08:00"

    # the goal converts ana; a second view is refused by the re-entry rule
    shop.events(
        [
            event("o-ana", "order.completed", "ana", morning + timedelta(hours=1), total=30),
            event("v2-ana", "product.viewed", "ana", morning + timedelta(hours=2)),
        ]
    )
    runner.run(morning + timedelta(hours=3))
    ana = {(row.kind, row.step_id): row for row in _history(shop, "ana")}
    converted = next(row for (kind, _), row in ana.items() if kind == "converted")
    assert converted.event_id == "o-ana"
    again = ana[("skipped", "(entry)")]
    assert again.reason == "re_entry"
    assert again.detail["re_entry"] == "never"
    assert again.detail["event_id"] == "v2-ana"
    assert again.detail["last_entered_at"].startswith(morning.date().isoformat())


def test_an_exit_records_the_event_that_ended_it(shop: Shop) -> None:
    shop.profiles([profile("eve", attributes={"tier": "gold"})])
    runner = JourneyRunner(shop.engine, {"nudge": NUDGE}, {"vip": VIP})
    shop.events([event("v-eve", "product.viewed", "eve", T0)])
    runner.run(T0 + timedelta(minutes=1))
    shop.events([event("close-eve", "account.closed", "eve", T0 + timedelta(minutes=5))])
    runner.run(T0 + timedelta(minutes=10))
    (exited,) = [row for row in _history(shop, "eve") if row.kind == "exited"]
    assert (exited.reason, exited.event_id) == ("exit_when:account.closed", "close-eve")
