"""The baseline policies, especially the market leaders' "most-engaged channel"."""

from __future__ import annotations

import numpy as np

from omni_journey.channels.baselines import distribution, most_engaged_rates
from omni_journey.channels.features import CHANNELS
from tests.unit.channels.support import history

ALL = np.ones((1, len(CHANNELS)), dtype=bool)


def _pick(name: str, counts: dict[tuple[int, str, str], float], eligible: np.ndarray = ALL) -> str:
    dist = distribution(name, history(1, counts=counts), eligible, ["cart_reminder"])
    assert dist.sum() == 1.0
    return CHANNELS[int(np.argmax(dist[0]))]


def test_most_engaged_takes_the_highest_open_or_click_rate_and_ignores_cost() -> None:
    counts = {
        (0, "email", "sent"): 20,
        (0, "email", "engaged"): 4,  # 20%
        (0, "sms", "sent"): 5,
        (0, "sms", "engaged"): 2,  # 40%: expensive, still wins
        (0, "push", "sent"): 10,
        (0, "push", "engaged"): 3,
    }
    assert _pick("most-engaged", counts) == "sms"


def test_received_excludes_bounces() -> None:
    counts = {
        (0, "email", "sent"): 10,
        (0, "email", "bounced"): 8,
        (0, "email", "engaged"): 1,  # 1 of 2 received: 50%
        (0, "push", "sent"): 10,
        (0, "push", "engaged"): 4,
    }
    assert _pick("most-engaged", counts) == "email"
    rates = most_engaged_rates(history(1, counts=counts))
    assert rates[0, CHANNELS.index("email")] == 0.5
    assert np.isnan(rates[0, CHANNELS.index("sms")])


def test_without_history_or_on_ties_the_rule_decides() -> None:
    assert _pick("most-engaged", {}) == "push"
    tie = {(0, "email", "sent"): 4, (0, "email", "engaged"): 1,
           (0, "sms", "sent"): 8, (0, "sms", "engaged"): 2}  # fmt: skip
    assert _pick("most-engaged", tie) == "email"


def test_only_eligible_channels_are_chosen() -> None:
    eligible = np.array([[True, True, False, False]])
    counts = {(0, "push", "sent"): 5, (0, "push", "engaged"): 5, (0, "sms", "sent"): 5}
    assert _pick("most-engaged", counts, eligible) == "sms"
    assert _pick("rule", {}, eligible) == "email"
    assert _pick("email", {}, np.array([[False, True, True, False]])) == "push"
    spread = distribution("random", history(1), eligible, ["x"])
    assert spread.tolist() == [[0.5, 0.5, 0.0, 0.0]]
