"""The rule policy and the decision log."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from omni_journey.channels.policy import Decision, RulePolicy, rule_channel


def test_best_takes_the_cheapest_eligible_channel() -> None:
    decision = RulePolicy().choose(("sms", "email", "push"), "best")
    assert decision.channel == "push"
    assert decision.propensity == 1.0
    assert decision.probabilities == {"sms": 0.0, "email": 0.0, "push": 1.0}
    assert decision.choice == "best"
    assert decision.reason.startswith("rule:")


def test_fixed_channel_and_fallback_order_are_the_marketers() -> None:
    assert RulePolicy().choose(("email",), "email").reason == "fixed channel"
    fallback = RulePolicy().choose(("sms", "email"), "fallback")
    assert (fallback.channel, fallback.reason) == ("sms", "fallback order")


def test_no_eligible_channel_is_a_bug_upstream() -> None:
    with pytest.raises(ValueError, match="should have skipped"):
        RulePolicy().choose((), "best")


def test_rule_order() -> None:
    assert rule_channel(("sms", "whatsapp")) == "whatsapp"
    assert rule_channel(("sms", "email")) == "email"


def test_the_log_is_json_and_keeps_what_off_policy_evaluation_needs() -> None:
    at = datetime(2026, 5, 4, 18, 0, tzinfo=UTC)
    decision = Decision(
        channel="sms",
        eligible=("email", "sms"),
        scores={"email": 0.1, "sms": 0.3},
        probabilities={"email": 0.025, "sms": 0.975},
        propensity=0.975,
        policy="learned-v1",
        model_version="cm-1",
        explored=False,
        choice="best",
        send_after=at,
    )
    log = json.loads(json.dumps(decision.as_log()))
    for key in ("eligible", "scores", "probabilities", "propensity", "policy", "model_version",
                "explored", "choice"):  # fmt: skip
        assert key in log
    assert log["send_after"] == at.isoformat()
    assert log["eligible"] == ["email", "sms"]


def test_the_logged_decision_holds_every_field_as_asdict_would() -> None:
    """``as_log`` is built by hand for speed: it must stay what ``asdict`` gives (with
    the eligible set as a list and ``send_after`` as ISO text), whatever fields exist."""
    from dataclasses import asdict
    from datetime import UTC, datetime

    from omni_journey.channels.policy import Decision

    full = Decision(
        "email", ("email", "sms"), {"email": 1.0}, {"email": 0.9, "sms": 0.1}, 0.9, "p",
        "m-1", True, "why", {"p_convert": {"email": 0.1}, "value": 25.0}, "best",
        datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    bare = Decision("push", ("push",), {}, {}, 1.0, "rule-v1")
    for decision in (full, bare):
        expected = asdict(decision)
        expected["eligible"] = list(decision.eligible)
        expected["send_after"] = (
            decision.send_after.isoformat() if decision.send_after is not None else None
        )
        assert decision.as_log() == expected
