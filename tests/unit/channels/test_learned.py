"""The learned policy: expected value minus cost, exploration, the rule without a model."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from omni_journey.channels.draws import cold_row
from omni_journey.channels.learned import LearnedPolicy, Request, parse_costs
from tests.unit.channels.support import AS_OF, constant_model, history

COSTS = {"email": 0.001, "sms": 0.07, "push": 0.0, "whatsapp": 0.06}


def _requests(n: int, channels: tuple[str, ...], choice: str = "best") -> list[Request]:
    return [Request(f"c-{i}", "cart_reminder", channels, choice, f"key-{i}") for i in range(n)]


def test_cold_start_without_a_model_is_the_rule_plus_logged_exploration() -> None:
    policy = LearnedPolicy(value=25.0, costs=COSTS, cold_epsilon=0.2)
    requests = _requests(4000, ("email", "sms", "push"))
    decisions = policy.decide(None, requests, AS_OF, model=None)
    chosen = Counter(d.channel for d in decisions)
    explored = [d for d in decisions if d.explored]
    assert 0.17 < len(explored) / len(decisions) < 0.23
    assert all(d.channel == "push" for d in decisions if not d.explored)
    assert chosen["sms"] > 0 and chosen["email"] > 0
    first = decisions[0]
    assert first.probabilities == pytest.approx(
        {"email": 0.2 / 3, "sms": 0.2 / 3, "push": 0.8 + 0.2 / 3}
    )
    assert first.propensity == pytest.approx(first.probabilities[first.channel])
    assert first.model_version is None
    assert all(d.reason.startswith("rule:") for d in decisions)


def test_cold_start_with_no_exploration_is_exactly_the_rule() -> None:
    policy = LearnedPolicy(costs=COSTS, cold_epsilon=0.0)
    decisions = policy.decide(None, _requests(200, ("sms", "whatsapp")), AS_OF, model=None)
    assert {d.channel for d in decisions} == {"whatsapp"}
    assert {d.propensity for d in decisions} == {1.0}
    assert not any(d.explored for d in decisions)


def test_a_model_picks_the_highest_value_minus_cost() -> None:
    # sms converts best, but at 25 a conversion its cost makes push the better deal
    model = constant_model({"email": 0.004, "sms": 0.010, "push": 0.008, "whatsapp": 0.002})
    policy = LearnedPolicy(value=25.0, costs=COSTS, epsilon=0.0)
    decisions = policy.decide(
        history(50), _requests(50, ("email", "sms", "push")), AS_OF, model=model
    )
    assert {d.channel for d in decisions} == {"push"}
    first = decisions[0]
    assert first.scores["sms"] == pytest.approx(25 * 0.010 - 0.07, abs=1e-4)
    assert first.scores["push"] == pytest.approx(25 * 0.008, abs=1e-4)
    assert first.extra["p_convert"]["sms"] == pytest.approx(0.010, abs=1e-5)
    assert first.model_version == "test-model"
    assert first.reason.startswith("model:")
    richer = LearnedPolicy(value=200.0, costs=COSTS, epsilon=0.0)
    assert (
        richer.decide(history(1), _requests(1, ("email", "sms", "push")), AS_OF, model=model)[
            0
        ].channel
        == "sms"
    )


def test_exploration_draws_from_the_logged_distribution() -> None:
    model = constant_model({"email": 0.004, "sms": 0.010, "push": 0.008})
    policy = LearnedPolicy(value=25.0, costs=COSTS, epsilon=0.05)
    n = 6000
    decisions = policy.decide(
        history(n), _requests(n, ("email", "sms", "push")), AS_OF, model=model
    )
    expected = decisions[0].probabilities
    assert sum(expected.values()) == pytest.approx(1.0)
    assert expected["push"] == pytest.approx(0.95 + 0.05 / 3)
    counts = Counter(d.channel for d in decisions)
    for channel, p in expected.items():
        assert abs(counts[channel] / n - p) < 4 * np.sqrt(p * (1 - p) / n) + 1e-3
    assert all(d.propensity == pytest.approx(d.probabilities[d.channel]) for d in decisions)


def test_decisions_are_deterministic_per_send() -> None:
    policy = LearnedPolicy(costs=COSTS, cold_epsilon=0.5)
    a = policy.decide(None, _requests(300, ("email", "sms")), AS_OF, model=None)
    b = policy.decide(None, _requests(300, ("email", "sms")), AS_OF, model=None)
    assert [d.channel for d in a] == [d.channel for d in b]


def test_one_eligible_channel_is_used_with_certainty() -> None:
    model = constant_model({"sms": 0.02})
    policy = LearnedPolicy(costs=COSTS, epsilon=0.3)
    decisions = policy.decide(history(20), _requests(20, ("sms",)), AS_OF, model=model)
    assert {(d.channel, d.propensity, d.explored) for d in decisions} == {("sms", 1.0, False)}
    assert decisions[0].reason == "only eligible channel"


def test_fixed_channels_and_fallback_lists_never_ask_the_model() -> None:
    model = constant_model({"email": 0.001, "sms": 0.5})
    policy = LearnedPolicy(costs=COSTS, epsilon=0.5)
    fixed = policy.decide(history(5), _requests(5, ("email",), "email"), AS_OF, model=model)
    assert {(d.channel, d.propensity, d.reason) for d in fixed} == {("email", 1.0, "fixed channel")}
    fallback = policy.decide(
        history(5), _requests(5, ("email", "sms"), "fallback"), AS_OF, model=model
    )
    assert {(d.channel, d.reason) for d in fallback} == {("email", "fallback order")}


def test_untrained_channels_are_not_scored_but_can_be_explored() -> None:
    model = constant_model({"email": 0.004, "push": 0.008, "sms": 0.5}, trained=["email", "push"])
    policy = LearnedPolicy(value=25.0, costs=COSTS, epsilon=0.1)
    decisions = policy.decide(
        history(3000), _requests(3000, ("email", "sms", "push")), AS_OF, model=model
    )
    assert "sms" not in decisions[0].scores
    assert all(d.channel == "push" for d in decisions if not d.explored)
    assert any(d.channel == "sms" for d in decisions)


def test_without_customer_context_the_learned_policy_is_the_rule() -> None:
    decision = LearnedPolicy().choose(("sms", "email"), "best")
    assert (decision.channel, decision.propensity) == ("email", 1.0)
    assert "no customer context" in decision.reason


def test_send_at_best_needs_history_and_returns_a_time_within_a_day() -> None:
    policy = LearnedPolicy(costs=COSTS, send_time_explore=0.0)
    hours = np.zeros((1, 24))
    hours[0, 20] = 12.0  # engages at 20:00 UTC
    request = Request("c-0", "cart_reminder", ("email",), "email", "k", send_at="best")
    decision = policy.decide(history(1, hours=hours), [request], AS_OF, model=None)[0]
    assert decision.send_after is not None
    assert decision.send_after.hour == 20
    with pytest.raises(ValueError, match="history"):
        policy.decide(None, [request], AS_OF, model=None)


def test_costs_setting_parses() -> None:
    assert parse_costs("email=0.001, sms=0.07") == {
        "email": 0.001,
        "sms": 0.07,
        "push": 0.0,
        "whatsapp": 0.0,
    }


@pytest.mark.parametrize("with_model", [True, False])
def test_the_policy_never_chooses_a_channel_without_consent(with_model: bool) -> None:
    """Whatever the model thinks and however it explores, the chosen channel and every
    channel with probability are among the request's eligible (consented) channels."""
    rng = np.random.default_rng(7)
    subsets = [
        tuple(c for c in ("email", "sms", "push", "whatsapp") if rng.random() < 0.6)
        for _ in range(3000)
    ]
    subsets = [s for s in subsets if s]
    requests = [
        Request(f"c-{i}", "cart_reminder", s, "best", f"consent-{i}") for i, s in enumerate(subsets)
    ]
    # the model loves sms, which most customers did not consent to
    model = constant_model({"email": 0.001, "sms": 0.5, "push": 0.002, "whatsapp": 0.3})
    policy = LearnedPolicy(value=25.0, costs=COSTS, epsilon=0.3, cold_epsilon=0.3)
    decisions = policy.decide(
        history(len(requests)), requests, AS_OF, model=model if with_model else None
    )
    for request, decision in zip(requests, decisions, strict=True):
        assert decision.channel in request.channels
        assert set(decision.probabilities) <= set(request.channels)
        assert sum(decision.probabilities.values()) == pytest.approx(1.0)
        assert decision.propensity == pytest.approx(decision.probabilities[decision.channel])
    assert any(d.explored for d in decisions)


CHANNEL_LISTS = [
    ("email",),
    ("sms", "whatsapp"),
    ("email", "sms", "push"),
    ("push", "email", "sms", "whatsapp"),
    ("webhook",),
    ("email", "webhook"),
    (),
]


@pytest.mark.parametrize("cold_epsilon", [0.0, 0.1, 0.2, 1 / 3])
def test_cold_rows_without_numpy_equal_the_scored_rows(cold_epsilon: float) -> None:
    """Without a model, a decision is made from a plain-Python row; it must be, number
    for number, the row :meth:`LearnedPolicy.score` computes with numpy."""
    policy = LearnedPolicy(costs=COSTS, cold_epsilon=cold_epsilon, epsilon=0.05)
    requests = [Request("c-1", "m", channels, "best", "k") for channels in CHANNEL_LISTS]
    scored = policy.score(None, requests, None)
    for i, request in enumerate(requests):
        p, scores, dist, greedy, epsilon, modelled = cold_row(request, cold_epsilon)
        assert np.array_equal(np.array(p), scored.p[i], equal_nan=True)
        assert np.array_equal(np.array(scores), scored.scores[i], equal_nan=True)
        assert dist == scored.dist[i].tolist()  # exactly: the draws compare against it
        assert (greedy, epsilon, modelled) == (
            int(scored.greedy[i]),
            float(scored.epsilon[i]),
            bool(scored.modelled[i]),
        )


def test_a_send_time_without_a_model_does_not_depend_on_who_shares_the_batch() -> None:
    """Before the first model, the population prior is flat: a customer's send time is
    the same decided alone or beside customers who engage at other hours (batches and
    shards group customers differently)."""
    policy = LearnedPolicy(costs=COSTS, send_time_explore=0.0)
    hours = np.zeros((3, 24))
    hours[0, 9] = 1.0  # little history of her own
    hours[1:, 22] = 50.0  # the others engage late
    request = Request("c-0", "cart_reminder", ("email",), "email", "k", send_at="best")
    others = [
        Request(f"c-{i}", "cart_reminder", ("email",), "email", f"k{i}", send_at="best")
        for i in (1, 2)
    ]
    alone = policy.decide(history(1, hours=hours[:1]), [request], AS_OF, model=None)[0]
    beside = policy.decide(history(3, hours=hours), [request, *others], AS_OF, model=None)[0]
    assert alone.send_after == beside.send_after
    assert alone.send_after is not None and alone.send_after.hour == 9
