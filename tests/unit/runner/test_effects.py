"""Effects -> rows, the pure half of the runner: every effect kind becomes the rows
and counts the runner writes, with its reason and inputs (no store, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from omni_journey.channels.policy import Decision
from omni_journey.engine.types import (
    CallWebhook,
    Converted,
    ExitJourney,
    ScheduleWakeup,
    SendMessage,
    Skip,
    StepEntered,
    UpdateAttributes,
)
from omni_journey.runner.effects import PassReport, effects_to_rows, log_row, render_context

NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=11)


def _send(**inputs: Any) -> SendMessage:
    return SendMessage(
        enrollment_id=7, customer_id="ana", journey_key="cart", version_id=3, step_id="remind",
        message="cart_reminder", channels=("push", "email"), choice="fallback",
        idempotency_key="cart:3:7:remind:1", send_after=NOW, inputs=inputs,
    )  # fmt: skip


def _decision(channel: str = "push") -> Decision:
    return Decision(channel, ("push", "email"), {channel: 1.0}, {channel: 1.0}, 1.0, "rule-v1",
                    reason="fallback order", choice="fallback")  # fmt: skip


def test_a_send_is_one_outbox_row_and_one_decision_with_its_inputs() -> None:
    report = PassReport()
    context = {7: {"trigger": {"sku": "SERUM-30"}, "trigger_event": "product.added"}}
    rows = effects_to_rows(
        "cart", [_send(eligibility={"push": "eligible", "email": "eligible"})],
        [_decision()], NOW, report, version_id=3, contexts=context,
    )  # fmt: skip
    (message,) = rows.messages
    assert message["idempotency_key"] == "cart:3:7:remind:1"
    assert (message["channel"], message["status"], message["send_after"]) == (
        "push",
        "pending",
        NOW,
    )
    assert message["render_context"] == {
        "event": {"sku": "SERUM-30"},
        "event_name": "product.added",
    }
    assert message["decision"] == _decision().as_log()
    (logged,) = rows.log
    assert (logged["kind"], logged["step_id"], logged["reason"]) == ("sent", "remind", "push")
    assert logged["detail"]["candidates"] == ["push", "email"]
    assert logged["detail"]["eligibility"] == {"push": "eligible", "email": "eligible"}
    assert logged["detail"]["decision"]["propensity"] == 1.0
    assert report.journeys["cart"] == {"queued": 1, "queued:push": 1}


def test_a_policy_send_time_moves_the_send_and_its_record() -> None:
    class Later:
        channel = "email"
        send_after = LATER

        def as_log(self) -> dict[str, Any]:
            return {"channel": "email", "send_after": LATER.isoformat()}

    rows = effects_to_rows("cart", [_send()], [Later()], NOW, PassReport(), version_id=3)
    assert rows.messages[0]["send_after"] == LATER
    assert rows.log[0]["at"] == LATER


def test_skips_deferrals_exits_and_conversions_keep_reason_and_inputs() -> None:
    report = PassReport()
    effects = [
        StepEntered(7, "ana", "remind", NOW),
        Skip(7, "ana", "remind", "no_consent", NOW, {"eligibility": {"sms": "no_consent"}}),
        ScheduleWakeup(8, LATER, "quiet_hours", "ben", "remind", {"timezone": "Asia/Tokyo"}),
        ScheduleWakeup(9, LATER, "delay", "cy", "wait"),  # a plain wait: nothing recorded
        ExitJourney(7, "ana", "exit_when:order.completed", NOW, "o-1"),
        Converted(7, "ana", "cart", "o-1", NOW, False, "remind", "cart_reminder"),
    ]
    rows = effects_to_rows("cart", effects, [], NOW, report, version_id=3)
    kinds = [(r["kind"], r["customer_id"], r["step_id"], r["reason"]) for r in rows.log]
    assert kinds == [
        ("step", "ana", "remind", None),
        ("skipped", "ana", "remind", "no_consent"),
        ("deferred", "ben", "remind", "quiet_hours"),
        ("exited", "ana", None, "exit_when:order.completed"),
        ("converted", "ana", "remind", "cart_reminder"),
    ]
    assert rows.log[1]["detail"] == {"eligibility": {"sms": "no_consent"}}
    assert rows.log[2]["detail"] == {"until": LATER.isoformat(), "timezone": "Asia/Tokyo"}
    assert rows.log[2]["at"] == NOW
    assert rows.log[3]["event_id"] == rows.log[4]["event_id"] == "o-1"
    assert [(e.event_id, e.name) for e in rows.events] == [
        ("journey.exited:7", "journey.exited"),
        ("journey.converted:7", "journey.converted"),
    ]
    assert rows.events[1].properties == {
        "journey": "cart", "holdout": False, "event_id": "o-1", "message": "cart_reminder",
    }  # fmt: skip
    assert report.journeys["cart"] == {
        "skipped": 1, "skipped:no_consent": 1, "deferred": 1, "exited": 1, "converted": 1,
    }  # fmt: skip


def test_updates_and_webhooks_become_their_rows() -> None:
    update = UpdateAttributes("ana", {"vip": True}, ("trial",))
    hook = CallWebhook(7, "ana", "hook", "https://crm.example.com/h", {"a": 1}, {"X": "y"}, "k-h")
    rows = effects_to_rows("cart", [update, hook], [], NOW, PassReport(), version_id=3)
    assert rows.updates == [update]
    (webhook,) = rows.messages
    assert (webhook["channel"], webhook["idempotency_key"], webhook["message_key"]) == (
        "webhook", "k-h", "hook",
    )  # fmt: skip
    assert webhook["decision"] == {
        "url": "https://crm.example.com/h", "body": {"a": 1}, "headers": {"X": "y"},
    }  # fmt: skip


def test_every_send_needs_its_decision() -> None:
    with pytest.raises(StopIteration):
        effects_to_rows("cart", [_send()], [], NOW, PassReport())


def test_rows_are_plain_values() -> None:
    row = log_row("cart", 3, 7, "ana", None, "entered", NOW)
    assert row["detail"] is None and row["at"] == NOW and row["message_id"] is None
    assert render_context(None) == {}


def test_new_enrollments_are_an_entered_decision_and_a_journey_event_each() -> None:
    from omni_journey.engine.types import EnrollmentState
    from omni_journey.runner.effects import entries_to_rows

    states = [
        EnrollmentState(11, "cart", 3, "ana", "wait", "active", NOW, holdout=False),
        EnrollmentState(12, "cart", 3, "ben", None, "active", NOW, holdout=True),
    ]
    report = PassReport()
    rows = entries_to_rows("cart", states, ["add-ana", None], LATER, report)
    assert [(r["kind"], r["enrollment_id"], r["event_id"], r["holdout"]) for r in rows.log] == [
        ("entered", 11, "add-ana", False),
        ("entered", 12, None, True),
    ]
    assert all(r["at"] == NOW and r["step_id"] is None for r in rows.log)
    assert [(e.event_id, e.properties) for e in rows.events] == [
        ("journey.entered:11", {"journey": "cart", "holdout": False}),
        ("journey.entered:12", {"journey": "cart", "holdout": True}),
    ]
    assert rows.messages == [] and rows.updates == []
    assert report.journeys["cart"] == {"entered": 2}
