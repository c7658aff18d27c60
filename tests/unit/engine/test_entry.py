"""Entry: triggers, filters, the entry segment, re-entry, one active enrollment, holdout."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from omni_journey.engine import ENTRY_STEP, EntryCandidate, evaluate_entry, holdout_bucket
from omni_journey.engine.types import ACTIVE, Entered, Skip
from tests.unit.engine.support import T0, FakeFacts, event, journey

STEPS = [{"id": "nudge", "type": "send", "message": "m"}]


def entered(effects: list[Any]) -> list[str]:
    return [e.enrollment.customer_id for e in effects if isinstance(e, Entered)]


def skipped(effects: list[Any]) -> list[tuple[str, str]]:
    return [(e.customer_id, e.reason) for e in effects if isinstance(e, Skip)]


def test_a_trigger_event_enters_with_its_properties() -> None:
    j = journey(steps=STEPS, trigger={"event": "product.viewed", "where": {"category": "skincare"}})
    trigger = event(
        "product.viewed", "c1", T0 - timedelta(minutes=5), seq=7, category="skincare", sku="SERUM"
    )
    [effect] = evaluate_entry(j, [EntryCandidate("c1", trigger)], FakeFacts(), T0)
    assert isinstance(effect, Entered)
    state = effect.enrollment
    assert effect.event_id == trigger.event_id == state.trigger_event_id
    assert (state.id, state.state, state.step_id, state.version_id) == (0, ACTIVE, "nudge", 1)
    assert state.entered_at == trigger.at  # the journey's clock starts at the trigger
    assert state.wake_at == T0  # due now
    assert state.context["trigger"] == {"category": "skincare", "sku": "SERUM"}
    assert state.context["trigger_event"] == "product.viewed"
    assert not state.holdout


def test_events_that_do_not_match_the_trigger_are_not_candidates() -> None:
    j = journey(steps=STEPS, trigger={"event": "product.viewed", "where": {"price": {"gte": 20}}})
    candidates = [
        EntryCandidate("c1", event("product.viewed", "c1", price=10)),
        EntryCandidate("c2", event("product.added", "c2", price=30)),
        EntryCandidate("c3", None),
        EntryCandidate("c4", event("product.viewed", "c4", price=25)),
    ]
    assert evaluate_entry(j, candidates, FakeFacts(), T0) == [
        e for e in evaluate_entry(j, candidates[3:], FakeFacts(), T0)
    ]
    assert entered(evaluate_entry(j, candidates, FakeFacts(), T0)) == ["c4"]


@pytest.mark.parametrize(
    "trigger",
    [{"segment": "lapsed"}, {"schedule": {"every": "1d", "at": "09:00"}, "segment": "lapsed"}],
)
def test_segment_and_schedule_entry_need_no_event(trigger: dict[str, Any]) -> None:
    j = journey(steps=STEPS, trigger=trigger)
    [effect] = evaluate_entry(j, [EntryCandidate("c1")], FakeFacts(), T0)
    assert isinstance(effect, Entered)
    assert effect.event_id is None
    assert effect.enrollment.entered_at == T0
    assert effect.enrollment.context["trigger"] == {}


def test_entry_segment_refuses_outsiders() -> None:
    j = journey(steps=STEPS, entry={"segment": "reachable"})
    facts = FakeFacts(segments={"reachable": {"c1"}})
    effects = evaluate_entry(
        j, [EntryCandidate(c, event("product.added", c)) for c in ("c1", "c2")], facts, T0
    )
    assert entered(effects) == ["c1"]
    assert skipped(effects) == [("c2", "entry_segment")]
    skip = effects[1]
    assert isinstance(skip, Skip) and skip.step_id == ENTRY_STEP and skip.enrollment_id == 0


def test_one_active_enrollment_per_customer() -> None:
    j = journey(steps=STEPS, entry={"re_entry": "always"})
    effects = evaluate_entry(
        j, [EntryCandidate("c1", event("product.added"), active=True)], FakeFacts(), T0
    )
    assert skipped(effects) == [("c1", "already_active")]


def test_two_triggers_in_one_batch_enter_once_the_earlier_one() -> None:
    j = journey(steps=STEPS, entry={"re_entry": "always"})
    late = event("product.added", "c1", T0, seq=2)
    early = event("product.added", "c1", T0 - timedelta(minutes=1), seq=1)
    effects = evaluate_entry(
        j, [EntryCandidate("c1", late), EntryCandidate("c1", early)], FakeFacts(), T0
    )
    [first] = [e for e in effects if isinstance(e, Entered)]
    assert first.event_id == early.event_id
    assert skipped(effects) == [("c1", "already_active")]


@pytest.mark.parametrize(
    ("re_entry", "last_entered", "enters"),
    [
        ("never", None, True),
        ("never", T0 - timedelta(days=400), False),
        ("always", T0 - timedelta(minutes=1), True),
        ("after 14d", T0 - timedelta(days=13), False),
        ("after 14d", T0 - timedelta(days=14), True),
        ("after 1d12h", T0 - timedelta(hours=36), True),
    ],
)
def test_re_entry_rules(re_entry: str, last_entered: Any, enters: bool) -> None:
    j = journey(steps=STEPS, entry={"re_entry": re_entry})
    candidate = EntryCandidate("c1", event("product.added"), last_entered_at=last_entered)
    effects = evaluate_entry(j, [candidate], FakeFacts(), T0)
    assert entered(effects) == (["c1"] if enters else [])
    assert skipped(effects) == ([] if enters else [("c1", "re_entry")])


def test_a_disabled_journey_enters_no_one() -> None:
    j = journey(steps=STEPS, enabled=False)
    effects = evaluate_entry(j, [EntryCandidate("c1", event("product.added"))], FakeFacts(), T0)
    assert skipped(effects) == [("c1", "journey_disabled")]


def test_holdout_is_deterministic_and_takes_no_step() -> None:
    j = journey(steps=STEPS, holdout="20%", goal={"event": "order.completed", "within": "7d"})
    customers = [f"c{i}" for i in range(400)]
    candidates = [EntryCandidate(c, event("product.added", c)) for c in customers]
    first = evaluate_entry(j, candidates, FakeFacts(), T0)
    again = evaluate_entry(j, list(reversed(candidates)), FakeFacts(), T0)
    held = {
        e.enrollment.customer_id for e in first if isinstance(e, Entered) and e.enrollment.holdout
    }
    assert held == {
        e.enrollment.customer_id for e in again if isinstance(e, Entered) and e.enrollment.holdout
    }
    assert held == {c for c in customers if holdout_bucket("j", c) < 0.2}
    assert 40 < len(held) < 120
    for effect in first:
        assert isinstance(effect, Entered)
        assert (effect.enrollment.step_id is None) is effect.enrollment.holdout


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        evaluate_entry(journey(steps=STEPS), [], FakeFacts(), T0.replace(tzinfo=None))
