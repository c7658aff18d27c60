"""The facts a journey declares it needs: what the runner loads before the engine runs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from omni_journey.engine import NO_FACTS, FactNeeds, facts_needed
from omni_journey.spec.models import JourneySpec, SegmentSpec


def _journey(steps: list[dict[str, Any]], **extra: Any) -> JourneySpec:
    return JourneySpec.model_validate(
        {"key": "j", "trigger": {"event": "product.viewed"}, "steps": steps, **extra}
    )


SEGMENTS = {
    "buyers": SegmentSpec.model_validate(
        {"key": "buyers", "match": {"purchases": {"within": "90d", "count": {"gte": 2}}}}
    ),
    "gold": SegmentSpec.model_validate(
        {
            "key": "gold",
            "match": {"all": [{"attribute": "tier", "equals": "gold"}, {"segment": "buyers"}]},
        }
    ),
    "loop": SegmentSpec.model_validate({"key": "loop", "match": {"segment": "loop"}}),
}


def test_waits_and_splits_need_no_facts_at_all() -> None:
    spec = _journey(
        [
            {"id": "pause", "type": "delay", "for": "1h"},
            {
                "id": "ab",
                "type": "split",
                "variants": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}],
            },
            {"id": "w", "type": "wait_for", "event": "order.completed", "timeout": "1d"},
        ]
    )
    assert facts_needed(spec, SEGMENTS) == NO_FACTS


def test_a_send_needs_profiles_and_recent_sends() -> None:
    spec = _journey([{"id": "s", "type": "send", "message": "m", "channel": "email"}])
    assert facts_needed(spec, SEGMENTS) == FactNeeds(profiles=True, sends=True)


def test_a_local_clock_delay_needs_the_time_zone() -> None:
    spec = _journey([{"id": "d", "type": "delay", "until": "09:00"}])
    assert facts_needed(spec, SEGMENTS) == FactNeeds(profiles=True)


def test_segments_are_followed_to_their_conditions_and_cycles_end() -> None:
    spec = _journey([{"id": "d", "type": "delay", "for": "1h"}], entry={"segment": "gold"})
    needs = facts_needed(spec, SEGMENTS)
    assert needs == FactNeeds(
        profiles=True, event_names=frozenset({"order.completed"}), lookback=timedelta(days=90)
    )
    looping = _journey([{"id": "d", "type": "delay", "for": "1h"}], entry={"segment": "loop"})
    assert facts_needed(looping, SEGMENTS) == NO_FACTS


def test_branch_arms_declare_events_consent_and_the_longest_look_back() -> None:
    spec = _journey(
        [
            {
                "id": "b",
                "type": "branch",
                "arms": [
                    {"when": {"event": "cart.viewed", "within": "7d"}, "next": "x"},
                    {"when": {"not": {"consent": "sms"}}, "next": "x"},
                    {"when": {"event": "product.viewed", "within": "30d"}, "next": "x"},
                ],
                "else": "x",
            },
            {"id": "x", "type": "exit"},
        ]
    )
    assert facts_needed(spec, SEGMENTS) == FactNeeds(
        consent=True,
        event_names=frozenset({"cart.viewed", "product.viewed"}),
        lookback=timedelta(days=30),
    )


def test_an_unbounded_event_condition_looks_back_over_all_history() -> None:
    arms = [{"when": {"event": "cart.viewed"}, "next": "x"},
            {"when": {"event": "product.viewed", "within": "1d"}, "next": "x"}]  # fmt: skip
    spec = _journey(
        [{"id": "b", "type": "branch", "arms": arms, "else": "x"}, {"id": "x", "type": "exit"}]
    )
    needs = facts_needed(spec, SEGMENTS)
    assert needs.event_names == {"cart.viewed", "product.viewed"}
    assert needs.lookback is None
