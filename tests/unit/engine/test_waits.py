"""Waiting: delays for a duration or until a local time, and wait_for an event."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from omni_journey.engine import EntryCandidate, evaluate_entry
from omni_journey.engine.types import (
    ACTIVE,
    COMPLETED,
    EXITED,
    Entered,
    ExitJourney,
    ScheduleWakeup,
    SendMessage,
    StepEntered,
    UpdateAttributes,
)
from tests.unit.engine.support import (
    T0,
    WAIT,
    FakeFacts,
    H,
    enter_and_advance,
    event,
    journey,
    kinds,
    later,
    start,
    steps_entered,
)

# --- delay ---------------------------------------------------------------------------


def test_delay_for_a_duration() -> None:
    j = journey(
        steps=[
            {"id": "wait", "type": "delay", "for": "2h"},
            {"id": "nudge", "type": "send", "message": "m", "channel": "email"},
        ]
    )
    state, effects = start(j)
    assert (state.step_id, state.wake_at) == ("wait", T0 + 2 * H)
    assert steps_entered(effects) == ["wait"]
    assert kinds(effects, ScheduleWakeup) == [ScheduleWakeup(1, T0 + 2 * H, "delay")]
    # not due yet: nothing changes, nothing happens
    same, nothing = later(j, state, T0 + H)
    assert same == state and nothing == []
    done, effects = later(j, state, T0 + 2 * H)
    assert steps_entered(effects) == ["nudge"]
    assert len(kinds(effects, SendMessage)) == 1
    assert (done.state, done.end_reason, done.wake_at) == (COMPLETED, "completed", None)


@pytest.mark.parametrize(
    ("tz", "expected_utc_hour"),
    [("America/New_York", 13), ("Europe/Berlin", 7), ("Asia/Tokyo", 0)],
)
def test_delay_until_a_local_clock_time(tz: str, expected_utc_hour: int) -> None:
    j = journey(
        steps=[
            {"id": "morning", "type": "delay", "until": "09:00"},
            {"id": "nudge", "type": "send", "message": "m"},
        ]
    )
    facts = FakeFacts(default_tz=tz)
    state, _ = start(j, facts)
    assert state.wake_at is not None
    assert state.wake_at > T0
    assert state.wake_at - T0 <= timedelta(days=1)
    assert state.wake_at.hour == expected_utc_hour and state.wake_at.minute == 0


def test_delay_until_the_current_clock_time_waits_a_day() -> None:
    j = journey(steps=[{"id": "morning", "type": "delay", "until": "12:00"}])
    state, _ = start(j)  # entered at 12:00 UTC exactly
    assert state.wake_at == T0 + 24 * H


def test_a_loop_through_delay_until_never_spins() -> None:
    """Found by the property tests: a loop whose only wait is "until 09:00", run at 09:00."""
    j = journey(
        steps=[
            {"id": "nudge", "type": "send", "message": "m"},
            {"id": "morning", "type": "delay", "until": "09:00", "next": "nudge"},
        ]
    )
    facts = FakeFacts(default_tz="Asia/Tokyo")
    nine_tokyo = T0.replace(hour=0)
    [state], effects = enter_and_advance(
        j, [event("product.added", "c1", nine_tokyo)], facts, nine_tokyo
    )
    assert len(kinds(effects, SendMessage)) == 1
    assert state.wake_at == nine_tokyo + 24 * H
    state, effects = later(j, state, nine_tokyo + 24 * H, facts=facts)
    assert len(kinds(effects, SendMessage)) == 1
    assert state.wake_at == nine_tokyo + 48 * H


def test_delay_until_across_a_dst_change() -> None:
    j = journey(steps=[{"id": "morning", "type": "delay", "until": "09:00"}])
    facts = FakeFacts(default_tz="Europe/Berlin")
    saturday_noon = T0.replace(year=2026, month=3, day=28)  # the night before CEST starts
    [state], _ = enter_and_advance(
        j, [event("product.added", "c1", saturday_noon)], facts, saturday_noon
    )
    assert state.wake_at == saturday_noon.replace(day=29, hour=7)  # 09:00 CEST = 07:00 UTC


def test_a_late_run_catches_up_through_delays_exactly() -> None:
    j = journey(
        steps=[
            {"id": "one", "type": "delay", "for": "1h"},
            {"id": "two", "type": "delay", "for": "1h"},
            {"id": "three", "type": "delay", "for": "5h"},
        ]
    )
    state, _ = start(j)
    # the pass runs 3.5 h late: one and two are over, three started at T0 + 2h
    state, effects = later(j, state, T0 + 3.5 * H)
    assert [(e.step_id, e.at) for e in kinds(effects, StepEntered)] == [
        ("two", T0 + H),
        ("three", T0 + 2 * H),
    ]
    assert (state.step_id, state.wake_at) == ("three", T0 + 7 * H)


# --- wait_for --------------------------------------------------------------------------


def test_wait_for_the_event_goes_to_on_event() -> None:
    j = journey(steps=WAIT)
    state, _ = start(j)
    assert (state.step_id, state.wake_at) == ("bought", T0 + 24 * H)
    order = event("order.completed", "c1", T0 + 3 * H, total=20)
    state, effects = later(j, state, T0 + 4 * H, [order])
    assert steps_entered(effects) == ["thanks"]
    assert [e.message for e in kinds(effects, SendMessage)] == ["thanks"]
    assert state.state == COMPLETED


def test_wait_for_filters_the_event() -> None:
    j = journey(steps=WAIT)
    state, _ = start(j)
    free = event("order.completed", "c1", T0 + 3 * H, total=0)
    waiting, effects = later(j, state, T0 + 4 * H, [free])
    assert waiting.step_id == "bought" and effects == []


def test_wait_for_times_out_to_on_timeout() -> None:
    j = journey(steps=WAIT)
    state, _ = start(j)
    state, effects = later(j, state, T0 + 25 * H)
    assert steps_entered(effects) == ["remind", "end"]
    assert [e.message for e in kinds(effects, SendMessage)] == ["remind"]
    assert kinds(effects, ExitJourney) == [ExitJourney(1, "c1", "done", T0 + 25 * H)]
    assert (state.state, state.end_reason) == (EXITED, "done")


def test_an_event_before_the_deadline_wins_even_when_the_pass_is_late() -> None:
    j = journey(steps=WAIT)
    state, _ = start(j)
    order = event("order.completed", "c1", T0 + 23 * H, total=5)
    state, effects = later(j, state, T0 + 30 * H, [order])
    assert steps_entered(effects) == ["thanks"]


def test_an_event_after_the_deadline_does_not_count() -> None:
    j = journey(steps=WAIT)
    state, _ = start(j)
    order = event("order.completed", "c1", T0 + 25 * H, total=5)
    state, effects = later(j, state, T0 + 30 * H, [order])
    assert steps_entered(effects) == ["remind", "end"]


def test_wait_for_the_same_event_as_the_trigger_counts_only_later_ones() -> None:
    """Entered by product.added, waiting for another product.added."""
    j = journey(
        steps=[
            {
                "id": "more",
                "type": "wait_for",
                "event": "product.added",
                "timeout": "1h",
                "on_event": "bundle",
                "on_timeout": "single",
            },
            {"id": "single", "type": "send", "message": "single", "next": "out"},
            {"id": "bundle", "type": "send", "message": "bundle"},
            {"id": "out", "type": "exit"},
        ]
    )
    trigger = event("product.added", "c1", T0, seq=1)
    before = event("product.added", "c1", T0 - timedelta(minutes=5), seq=0)
    [entered] = evaluate_entry(j, [EntryCandidate("c1", trigger)], FakeFacts(), T0)
    assert isinstance(entered, Entered)
    # the trigger itself (and older adds) arrive with the first advance: they do not count
    state, effects = later(j, replace(entered.enrollment, id=1), T0, [before, trigger])
    assert state.step_id == "more"
    assert kinds(effects, SendMessage) == []
    # a second add at the same instant as the trigger, but a different event, counts
    again = event("product.added", "c1", T0, seq=2)
    _, effects = later(j, state, T0 + timedelta(minutes=1), [trigger, again])
    assert [e.message for e in kinds(effects, SendMessage)] == ["bundle"]
    # with only the trigger replayed, it times out
    _, effects = later(j, state, T0 + 2 * H, [trigger])
    assert [e.message for e in kinds(effects, SendMessage)] == ["single"]


def test_events_before_a_wait_began_do_not_count() -> None:
    j = journey(steps=[{"id": "pause", "type": "delay", "for": "2h"}, *WAIT])
    state, _ = start(j)
    early = event("order.completed", "c1", T0 + H, total=5)  # during the delay
    state, effects = later(j, state, T0 + 3 * H, [early])
    assert steps_entered(effects) == ["bought"]
    assert state.context["step"]["since"] == (T0 + 2 * H).isoformat()
    assert state.wake_at == T0 + 26 * H


def test_an_event_ends_one_wait_only_even_when_events_share_an_instant() -> None:
    """Found by the property tests: a wait_for looping to itself reused one event forever."""
    j = journey(
        steps=[
            {"id": "count", "type": "wait_for", "event": "a", "timeout": "1h", "on_event": "tally"},
            {"id": "tally", "type": "update", "set": {"seen": True}, "next": "count"},
        ],
        trigger={"event": "start"},
    )
    [state], _ = enter_and_advance(j, [event("start", "c1", T0)], FakeFacts(), T0)
    burst = [event("a", "c1", T0 + H / 2, seq=i) for i in range(3)]
    state, effects = later(j, state, T0 + H / 2, burst)
    assert len(kinds(effects, UpdateAttributes)) == 3
    assert (state.state, state.step_id) == (ACTIVE, "count")
    assert state.context["visits"] == {"count": 4, "tally": 3}
