"""Compiling the step graph, refusing inconsistent ones, and planning migrations."""

from __future__ import annotations

from typing import Any

import pytest

from omni_journey.engine import compile_journey, plan_migration
from omni_journey.spec.models import JourneySpec
from tests.unit.engine.support import journey

STEPS: list[dict[str, Any]] = [
    {"id": "wait", "type": "delay", "for": "1h"},
    {
        "id": "bought",
        "type": "wait_for",
        "event": "order.completed",
        "timeout": "2d",
        "on_event": "done",
    },
    {"id": "vip", "type": "branch", "arms": [{"when": {"segment": "vip"}, "next": "offer"}]},
    {
        "id": "ab",
        "type": "split",
        "variants": [{"name": "a", "weight": 1, "next": "offer"}, {"name": "b", "weight": 1}],
    },
    {"id": "nudge", "type": "send", "message": "nudge", "channel": "email", "next": "done"},
    {"id": "offer", "type": "send", "message": "offer", "channel": ["push", "email"]},
    {"id": "done", "type": "exit"},
]


def test_outcomes_resolve_to_step_ids_with_defaults() -> None:
    j = journey(
        steps=STEPS,
        exit_when=[{"event": "unsubscribed"}],
        goal={"event": "order.completed", "within": "7d"},
    )
    assert j.first_step == "wait"
    assert j.next_step("wait") == "bought"
    assert j.next_step("bought", "event") == "done"
    assert j.next_step("bought", "timeout") == "vip"  # default: the following step
    assert j.next_step("vip", "arm:0") == "offer"
    assert j.next_step("vip", "else") == "ab"
    assert j.next_step("ab", "variant:a") == "offer"
    assert j.next_step("ab", "variant:b") == "nudge"
    assert j.next_step("nudge") == "done"  # its own next
    assert j.next_step("offer") == "done"
    assert j.steps["done"].outcomes == {}
    assert j.waits == {"wait", "bought"}
    assert j.send_steps == {"nudge", "offer"}
    assert j.event_names == {"product.added", "order.completed", "unsubscribed"}
    assert j.key == "j" and j.version_id == 1


def test_the_last_step_leads_to_the_end() -> None:
    j = journey(steps=[{"id": "only", "type": "send", "message": "m"}])
    assert j.next_step("only") is None


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        (
            [{"id": "a", "type": "delay", "for": "1h", "next": "nowhere"}],
            'step "a" (next) goes to unknown step "nowhere"',
        ),
        (
            [{"id": "a", "type": "delay", "for": "1h"}, {"id": "a", "type": "exit"}],
            'step id "a" is used twice',
        ),
        (
            [
                {"id": "a", "type": "update", "set": {"x": 1}, "next": "b"},
                {"id": "b", "type": "send", "message": "m", "next": "a"},
            ],
            "loop without a delay or wait_for: a -> b -> a",
        ),
        (
            [
                {
                    "id": "a",
                    "type": "split",
                    "variants": [{"name": "x", "weight": 1}, {"name": "x", "weight": 2}],
                }
            ],
            'split "a" names a variant twice',
        ),
    ],
)
def test_inconsistent_graphs_are_refused(steps: list[dict[str, Any]], problem: str) -> None:
    with pytest.raises(ValueError, match="inconsistent") as info:
        journey(steps=steps)
    assert problem in str(info.value)


def test_a_loop_through_a_wait_is_fine() -> None:
    j = journey(
        steps=[
            {"id": "nudge", "type": "send", "message": "m"},
            {"id": "later", "type": "delay", "for": "1d", "next": "nudge"},
        ]
    )
    assert j.next_step("later") == "nudge"


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"quiet_hours": {"start": "21:00", "end": "21:00"}}, "quiet_hours start equals end"),
        ({"send_window": {"days": [], "start": "09:00", "end": "17:00"}}, "no days"),
        ({"send_window": {"start": "09:00", "end": "09:00"}}, "send_window start equals end"),
    ],
)
def test_timing_rules_that_can_never_work_are_refused(extra: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        journey(steps=[{"id": "a", "type": "send", "message": "m"}], **extra)


def test_every_problem_is_reported_at_once() -> None:
    spec = JourneySpec.model_validate(
        {
            "key": "j",
            "trigger": {"event": "x"},
            "steps": [
                {"id": "a", "type": "delay", "for": "1h", "next": "b"},
                {
                    "id": "c",
                    "type": "wait_for",
                    "event": "e",
                    "timeout": "1h",
                    "on_event": "d",
                    "on_timeout": "e",
                },
            ],
        }
    )
    with pytest.raises(ValueError) as info:
        compile_journey(spec, 3)
    message = str(info.value)
    assert '"b"' in message and '"d"' in message and '"e"' in message


def test_plan_migration() -> None:
    old = journey(
        steps=[
            {"id": "wait", "type": "delay", "for": "1h"},
            {"id": "remind", "type": "send", "message": "m"},
            {"id": "old_offer", "type": "send", "message": "o"},
            {"id": "gone", "type": "delay", "for": "1d"},
            {"id": "bad_target", "type": "delay", "for": "1d"},
        ]
    )
    new = journey(
        version_id=2,
        steps=[
            {"id": "wait", "type": "delay", "for": "2h"},
            {"id": "remind", "type": "send", "message": "m"},
            {"id": "offer", "type": "send", "message": "o"},
        ],
    )
    plan = plan_migration(
        old, new, {"old_offer": "offer", "bad_target": "nowhere", "wait": "offer"}
    )
    assert plan == {
        "wait": "wait",  # still exists: stays, even with a migrate entry
        "remind": "remind",
        "old_offer": "offer",
        "gone": None,
        "bad_target": None,
    }
