"""Goals (conversions, last touch), exit_when, and the holdout group."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from omni_journey.engine import advance
from omni_journey.engine.types import (
    ACTIVE,
    COMPLETED,
    EXITED,
    Converted,
    EnrollmentState,
    ExitJourney,
    ScheduleWakeup,
    SendMessage,
    StepEntered,
)
from tests.unit.engine.support import T0, FakeFacts, enter_and_advance, event, journey

H = timedelta(hours=1)
D = timedelta(days=1)
STEPS = [
    {"id": "first", "type": "send", "message": "first"},
    {"id": "pause", "type": "delay", "for": "1d"},
    {"id": "second", "type": "send", "message": "second"},
    {"id": "rest", "type": "delay", "for": "3d"},
]
GOAL = {"event": "order.completed", "within": "7d"}


def of(effects: list[Any], kind: type[Any]) -> list[Any]:
    return [e for e in effects if isinstance(e, kind)]


def enter(j: Any, customer: str = "c1") -> EnrollmentState:
    [state], _ = enter_and_advance(j, [event("product.added", customer, T0)], FakeFacts(), T0)
    return state


def step(
    j: Any, state: EnrollmentState, at: Any, *events: Any
) -> tuple[EnrollmentState, list[Any]]:
    result = advance(j, [state], {state.customer_id: list(events)}, FakeFacts(), at)
    return result.states[0], result.effects


def test_a_goal_converts_once_with_the_last_message_before_it_as_last_touch() -> None:
    j = journey(steps=STEPS, goal=GOAL)
    state = enter(j)  # "first" was sent
    order = event("order.completed", "c1", T0 + 2 * H, order_id="o1")
    state, effects = step(j, state, T0 + 3 * H, order)
    assert of(effects, Converted) == [
        Converted(1, "c1", "j", order.event_id, order.at, False, "first", "first")
    ]
    assert state.state == ACTIVE  # a goal alone does not end the journey
    # the second message goes out later; a second order converts nothing more
    state, effects = step(j, state, T0 + D + H, event("order.completed", "c1", T0 + D + H))
    assert of(effects, Converted) == []
    assert [s.message for s in of(effects, SendMessage)] == ["second"]


def test_last_touch_is_the_latest_message_sent_before_the_goal() -> None:
    j = journey(steps=STEPS, goal=GOAL)
    state = enter(j)
    state, _ = step(j, state, T0 + D)  # sends "second"
    state, effects = step(j, state, T0 + 2 * D, event("order.completed", "c1", T0 + 2 * D))
    [converted] = of(effects, Converted)
    assert (converted.last_step_id, converted.last_message) == ("second", "second")


def test_goal_filters_and_window() -> None:
    j = journey(steps=STEPS, goal={**GOAL, "where": {"total": {"gte": 50}}})
    state = enter(j)
    small = event("order.completed", "c1", T0 + H, total=10)
    late = event("order.completed", "c1", T0 + 7 * D, total=90)  # the window is [entry, +7d)
    _, effects = step(j, state, T0 + 7 * D + H, small, late)
    assert of(effects, Converted) == []
    big = event("order.completed", "c1", T0 + 7 * D - H, total=90)
    _, effects = step(j, state, T0 + 7 * D + H, small, big)
    assert [c.event_id for c in of(effects, Converted)] == [big.event_id]


def test_the_trigger_event_is_never_its_own_conversion() -> None:
    j = journey(steps=STEPS, trigger={"event": "order.completed"}, goal=GOAL)
    trigger = event("order.completed", "c1", T0)
    _, effects = enter_and_advance(j, [trigger], FakeFacts(), T0)
    assert of(effects, Converted) == []


def test_exit_when_ends_the_enrollment_wherever_it_is() -> None:
    j = journey(
        steps=STEPS,
        exit_when=[
            {"event": "unsubscribed"},
            {"event": "order.completed", "where": {"total": {"gt": 0}}},
        ],
    )
    state = enter(j)
    assert state.step_id == "pause"
    free = event("order.completed", "c1", T0 + H, total=0)
    state2, effects = step(j, state, T0 + 2 * H, free)
    assert state2.state == ACTIVE and effects == []
    unsub = event("unsubscribed", "c1", T0 + 2 * H)
    state2, effects = step(j, state, T0 + 3 * H, unsub)
    assert of(effects, ExitJourney) == [
        ExitJourney(1, "c1", "exit_when:unsubscribed", unsub.at, unsub.event_id)
    ]
    assert (state2.state, state2.end_reason, state2.ended_at, state2.wake_at) == (
        EXITED,
        "exit_when:unsubscribed",
        unsub.at,
        None,
    )
    assert state2.step_id == "pause"  # where it was


def test_an_exit_beats_a_step_that_came_due_in_the_same_pass() -> None:
    """Deciding with everything known at ``now``: no message to someone who left."""
    j = journey(steps=STEPS, exit_when=[{"event": "order.completed"}])
    state = enter(j)
    state, effects = step(j, state, T0 + D + 2 * H, event("order.completed", "c1", T0 + D + H))
    assert of(effects, SendMessage) == []
    assert state.state == EXITED


def test_events_before_entry_do_not_exit() -> None:
    j = journey(steps=STEPS, exit_when=[{"event": "order.completed"}])
    state = enter(j)
    state, _ = step(j, state, T0 + H, event("order.completed", "c1", T0 - H))
    assert state.state == ACTIVE


def test_a_goal_that_is_also_an_exit_converts_first_then_exits() -> None:
    j = journey(steps=STEPS, goal=GOAL, exit_when=[{"event": "order.completed"}])
    state = enter(j)
    order = event("order.completed", "c1", T0 + H)
    state, effects = step(j, state, T0 + 2 * H, order)
    assert [type(e).__name__ for e in effects] == ["Converted", "ExitJourney"]
    assert state.context["converted"]["event_id"] == order.event_id


def test_a_goal_after_the_journey_finished_still_counts_within_the_window() -> None:
    j = journey(steps=[{"id": "only", "type": "send", "message": "m"}], goal=GOAL)
    state = enter(j)
    assert state.state == COMPLETED
    order = event("order.completed", "c1", T0 + 3 * D)
    done, effects = step(j, state, T0 + 3 * D, order)
    assert [(c.event_id, c.last_message) for c in of(effects, Converted)] == [(order.event_id, "m")]
    assert (done.state, done.end_reason) == (COMPLETED, "completed")  # and stays ended


def test_holdout_takes_no_steps_converts_and_completes_when_the_window_closes() -> None:
    j = journey(steps=STEPS, goal=GOAL, holdout="50%")
    facts = FakeFacts()
    customers = [f"c{i}" for i in range(40)]
    states, effects = enter_and_advance(
        j, [event("product.added", c, T0) for c in customers], facts, T0
    )
    held = [s for s in states if s.holdout]
    treated = [s for s in states if not s.holdout]
    assert held and treated
    held_ids = {s.id for s in held}
    assert not [
        e
        for e in effects
        if isinstance(e, StepEntered | SendMessage) and e.enrollment_id in held_ids
    ]
    assert {
        e.enrollment_id for e in of(effects, ScheduleWakeup) if e.reason == "holdout"
    } == held_ids
    assert all((s.state, s.step_id, s.wake_at) == (ACTIVE, None, T0 + 7 * D) for s in held)
    # a held-out customer buys: the conversion counts (for lift), flagged as holdout
    buyer = held[0]
    order = event("order.completed", buyer.customer_id, T0 + 2 * D)
    result = advance(j, held, {buyer.customer_id: [order]}, facts, T0 + 2 * D)
    assert [(c.customer_id, c.holdout, c.last_message) for c in of(result.effects, Converted)] == [
        (buyer.customer_id, True, None)
    ]
    assert all(s.state == ACTIVE for s in result.states)
    # the window closes: every held-out enrollment completes with reason holdout
    closed = advance(j, result.states, {}, facts, T0 + 7 * D)
    assert all((s.state, s.end_reason) == (COMPLETED, "holdout") for s in closed.states)
    assert {e.reason for e in of(closed.effects, ExitJourney)} == {"holdout"}


def test_holdout_without_a_goal_completes_at_once() -> None:
    j = journey(steps=STEPS, holdout="50%")
    states, _ = enter_and_advance(
        j, [event("product.added", f"c{i}", T0) for i in range(20)], FakeFacts(), T0
    )
    assert {(s.state, s.end_reason) for s in states if s.holdout} == {(COMPLETED, "holdout")}
