"""Branch, split, actions, ends, loops, versions and idempotency keys."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from omni_journey.engine import (
    MAX_TRANSITIONS,
    advance,
)
from omni_journey.engine.compile import CompiledStep
from omni_journey.engine.types import (
    ACTIVE,
    EXITED,
    CallWebhook,
    CustomerFacts,
    ExitJourney,
    SendMessage,
    StepEntered,
    UpdateAttributes,
)
from tests.unit.engine.support import (
    ALL_OK,
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

# --- branch, split ------------------------------------------------------------------

BRANCH: list[dict[str, Any]] = [
    {
        "id": "which",
        "type": "branch",
        "arms": [
            {"when": {"segment": "vip"}, "next": "vip"},
            {"when": {"attribute": "tier", "equals": "gold"}, "next": "gold"},
        ],
    },
    {"id": "regular", "type": "send", "message": "regular", "next": "out"},
    {"id": "vip", "type": "send", "message": "vip", "next": "out"},
    {"id": "gold", "type": "send", "message": "gold", "next": "out"},
    {"id": "out", "type": "exit"},
]


def test_branch_takes_the_first_arm_that_holds_else_the_following_step() -> None:
    j = journey(steps=BRANCH)
    gold = CustomerFacts("c2", attributes={"tier": "gold"}, eligible=ALL_OK)
    both = CustomerFacts("c1", attributes={"tier": "gold"}, eligible=ALL_OK)
    facts = FakeFacts({"c1": both, "c2": gold}, segments={"vip": {"c1"}})
    triggers = [event("product.added", c) for c in ("c1", "c2", "c3")]
    _, effects = enter_and_advance(j, triggers, facts, T0)
    assert {(e.customer_id, e.message) for e in kinds(effects, SendMessage)} == {
        ("c1", "vip"),
        ("c2", "gold"),
        ("c3", "regular"),
    }


def test_branch_else() -> None:
    j = journey(steps=[{**BRANCH[0], "else": "gold"}, *BRANCH[1:]])
    _, effects = start(j)
    assert [e.message for e in kinds(effects, SendMessage)] == ["gold"]


def test_split_is_weighted_stable_and_remembered() -> None:
    j = journey(
        steps=[
            {
                "id": "ab",
                "type": "split",
                "variants": [
                    {"name": "a", "weight": 3, "next": "a"},
                    {"name": "b", "weight": 1, "next": "b"},
                ],
            },
            {"id": "a", "type": "send", "message": "a", "next": "out"},
            {"id": "b", "type": "send", "message": "b", "next": "out"},
            {"id": "out", "type": "exit"},
        ]
    )
    customers = [f"c{i}" for i in range(2000)]
    states, effects = enter_and_advance(
        j, [event("product.added", c) for c in customers], FakeFacts(), T0
    )
    chosen = {e.customer_id: e.message for e in kinds(effects, SendMessage)}
    assert len(chosen) == len(customers)
    share_a = sum(m == "a" for m in chosen.values()) / len(chosen)
    assert abs(share_a - 0.75) < 0.04
    assert all(s.context["split"]["ab"] == chosen[s.customer_id] for s in states)
    _, again = enter_and_advance(
        j, [event("product.added", c) for c in customers[:100]], FakeFacts(), T0 + H
    )
    assert {e.customer_id: e.message for e in kinds(again, SendMessage)} == {
        c: chosen[c] for c in customers[:100]
    }


# --- actions and ends ----------------------------------------------------------------


def test_update_webhook_and_exit_steps() -> None:
    j = journey(
        steps=[
            {"id": "tag", "type": "update", "set": {"abandoner": True}, "unset": ["coupon"]},
            {
                "id": "crm",
                "type": "webhook",
                "url": "https://crm.example/hook",
                "body": {"kind": "cart"},
                "headers": {"X-Team": "growth"},
            },
            {"id": "stop", "type": "exit", "reason": "handed_to_crm"},
            {"id": "never", "type": "send", "message": "m"},
        ]
    )
    state, effects = start(j)
    assert kinds(effects, UpdateAttributes) == [
        UpdateAttributes("c1", {"abandoner": True}, ("coupon",))
    ]
    [hook] = kinds(effects, CallWebhook)
    assert (hook.url, dict(hook.body), dict(hook.headers)) == (
        "https://crm.example/hook",
        {"kind": "cart"},
        {"X-Team": "growth"},
    )
    assert hook.idempotency_key == "j:1:1:crm:1"
    assert steps_entered(effects) == ["tag", "crm", "stop"]
    assert kinds(effects, ExitJourney) == [ExitJourney(1, "c1", "handed_to_crm", T0)]
    assert (state.state, state.step_id, state.end_reason) == (EXITED, "stop", "handed_to_crm")


def test_an_exit_step_without_a_reason_names_itself() -> None:
    j = journey(steps=[{"id": "stop", "type": "exit"}])
    state, _ = start(j)
    assert state.end_reason == "exit_step:stop"


def test_send_queues_one_message_with_its_context() -> None:
    j = journey(
        steps=[
            {"id": "nudge", "type": "send", "message": "cart", "channel": "best", "send_at": "best"}
        ]
    )
    state, effects = start(j)
    [send] = kinds(effects, SendMessage)
    assert send == SendMessage(
        enrollment_id=1,
        customer_id="c1",
        journey_key="j",
        version_id=1,
        step_id="nudge",
        message="cart",
        channels=("email", "sms", "push", "whatsapp"),
        choice="best",
        idempotency_key="j:1:1:nudge:1",
        send_after=T0,
        send_at="best",
    )
    assert state.context["last_step_id"] == "nudge"
    assert state.context["last_message"] == "cart"


# --- loops and keys ------------------------------------------------------------------


def test_loops_through_a_wait_use_a_new_key_each_visit() -> None:
    j = journey(
        steps=[
            {"id": "nudge", "type": "send", "message": "m"},
            {"id": "later", "type": "delay", "for": "1d", "next": "nudge"},
        ]
    )
    state, effects = start(j)
    keys = [e.idempotency_key for e in kinds(effects, SendMessage)]
    for day in range(1, 4):
        state, effects = later(j, state, T0 + day * 24 * H)
        keys += [e.idempotency_key for e in kinds(effects, SendMessage)]
    assert keys == [f"j:1:1:nudge:{n}" for n in range(1, 5)]
    assert state.context["visits"] == {"nudge": 4, "later": 4}


def test_a_late_loop_does_not_spin_it_restarts_from_now() -> None:
    j = journey(
        steps=[
            {
                "id": "check",
                "type": "branch",
                "arms": [{"when": {"segment": "done"}, "next": "out"}],
            },
            {"id": "later", "type": "delay", "for": "1h", "next": "check"},
            {"id": "out", "type": "exit"},
        ]
    )
    state, _ = start(j)
    state, effects = later(j, state, T0 + 500 * H)  # 500 hours late
    assert steps_entered(effects) == ["check", "later"]
    assert (state.state, state.wake_at) == (ACTIVE, T0 + 501 * H)


def test_a_rerun_with_the_same_inputs_gives_the_same_outputs() -> None:
    j = journey(steps=WAIT)
    state, _ = start(j)
    first = later(j, state, T0 + 25 * H)
    assert later(j, state, T0 + 25 * H) == first


def test_loop_limit_stops_a_graph_that_spins() -> None:
    """compile_journey refuses instant loops; the bounded loop is the last line of defence."""
    j = journey(
        steps=[
            {"id": "a", "type": "update", "set": {"x": 1}},
            {"id": "b", "type": "update", "set": {"x": 2}},
        ]
    )
    forged = replace(
        j, steps={**j.steps, "b": CompiledStep("b", "update", 1, j.steps["b"].spec, {"next": "a"})}
    )
    [state], effects = enter_and_advance(forged, [event("product.added")], FakeFacts(), T0)
    assert len(kinds(effects, StepEntered)) == MAX_TRANSITIONS
    assert (state.state, state.end_reason) == (EXITED, "loop_limit")
    assert kinds(effects, ExitJourney)[-1].reason == "loop_limit"


def test_an_enrollment_at_a_step_the_version_lacks_exits() -> None:
    j = journey(steps=[{"id": "wait", "type": "delay", "for": "1h"}])
    state, _ = start(j)
    state, effects = later(j, replace(state, step_id="vanished"), T0 + 2 * H)
    assert (state.state, state.end_reason) == (EXITED, "unknown_step")
    assert [e.reason for e in kinds(effects, ExitJourney)] == ["unknown_step"]


def test_a_migrated_enrollment_enters_its_new_step() -> None:
    old = journey(steps=[{"id": "old_wait", "type": "delay", "for": "1d"}])
    new = journey(
        version_id=2,
        steps=[
            {"id": "wait", "type": "delay", "for": "1d"},
            {"id": "nudge", "type": "send", "message": "m"},
        ],
    )
    state, _ = start(old)
    moved = replace(state, version_id=2, step_id="nudge")  # what the service writes
    state, effects = later(new, moved, T0 + 25 * H)
    assert steps_entered(effects) == ["nudge"]
    assert [e.idempotency_key for e in kinds(effects, SendMessage)] == ["j:2:1:nudge:1"]


def test_states_of_another_version_or_unsaved_are_refused() -> None:
    j = journey(steps=WAIT)
    state, _ = start(j)
    with pytest.raises(ValueError, match="version"):
        advance(journey(version_id=2, steps=WAIT), [state], {}, FakeFacts(), T0)
    with pytest.raises(ValueError, match="store a new enrollment"):
        advance(j, [replace(state, id=0)], {}, FakeFacts(), T0)


def test_a_second_active_enrollment_of_a_customer_is_exited() -> None:
    j = journey(steps=WAIT)
    state, _ = start(j)
    twin = replace(state, id=9)
    result = advance(j, [twin, state], {}, FakeFacts(), T0 + H)
    assert [(s.id, s.state, s.end_reason) for s in result.states] == [
        (9, EXITED, "duplicate_enrollment"),
        (1, ACTIVE, None),
    ]
