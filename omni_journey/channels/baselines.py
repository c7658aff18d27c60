"""Channel policies as distributions over channels, for evaluation and benchmarks.

Each function returns, for n decisions, an (n, channels) matrix of probabilities
over the eligible channels:

* ``email``: always email when eligible, else the rule;
* ``random``: uniform over the eligible channels;
* ``rule``: the cheapest eligible channel (push, email, whatsapp, sms);
* ``most-engaged``: what market leaders ship (Braze's Intelligent Channel): per
  channel, messages opened or clicked / messages received over 180 days, the highest
  wins; channels never sent to score nothing; ties and customers without history go to
  the rule; it never explores and ignores cost;
* ``learned``: :class:`~omni_journey.channels.learned.LearnedPolicy` with a model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from omni_journey.channels.features import CHANNELS, FloatArray, History
from omni_journey.channels.learned import LearnedPolicy, Request
from omni_journey.channels.model import ChannelModel
from omni_journey.channels.policy import RULE_ORDER

__all__ = ["BASELINES", "distribution", "most_engaged_rates"]

BASELINES: tuple[str, ...] = ("email", "random", "rule", "most-engaged")

_RULE_RANK = np.array([RULE_ORDER.index(c) for c in CHANNELS], dtype=float)


def _one_hot(index: np.ndarray, k: int) -> FloatArray:
    out = np.zeros((len(index), k))
    out[np.arange(len(index)), index] = 1.0
    return out


def _rule(eligible: np.ndarray) -> np.ndarray:
    rank = np.where(eligible, _RULE_RANK, np.inf)
    return np.asarray(np.argmin(rank, axis=1))


def most_engaged_rates(history: History) -> FloatArray:
    """(n, channels): opened-or-clicked messages / received (sent - bounced), 180 days;
    ``nan`` where the channel was never sent to."""
    received = history.stat("sent", 180) - history.stat("bounced", 180)
    engaged = history.stat("engaged", 180)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(received > 0, engaged / np.maximum(received, 1), np.nan)


def distribution(
    name: str,
    history: History,
    eligible: np.ndarray,
    messages: Sequence[str],
    *,
    model: ChannelModel | None = None,
    policy: LearnedPolicy | None = None,
) -> FloatArray:
    """The (n, channels) distribution of policy ``name`` over ``eligible`` channels."""
    n, k = eligible.shape
    if n == 0:
        return np.zeros((0, k))
    rule = _rule(eligible)
    if name == "rule":
        return _one_hot(rule, k)
    if name == "email":
        email = CHANNELS.index("email")
        return _one_hot(np.where(eligible[:, email], email, rule), k)
    if name == "random":
        share = np.where(eligible, 1.0, 0.0) / np.maximum(eligible.sum(axis=1, keepdims=True), 1)
        return np.asarray(share, dtype=float)
    if name == "most-engaged":
        rates = np.where(eligible, most_engaged_rates(history), np.nan)
        known = ~np.isnan(rates)
        # highest rate; ties go to the rule's order (a tiny penalty per rank)
        keyed = np.where(known, rates - 1e-9 * _RULE_RANK, -np.inf)
        best = np.argmax(keyed, axis=1)
        return _one_hot(np.where(known.any(axis=1), best, rule), k)
    if name == "learned":
        if policy is None:
            raise ValueError("the learned policy needs a LearnedPolicy (and a model)")
        requests = [
            Request(cid, message, tuple(c for c, ok in zip(CHANNELS, row, strict=True) if ok),
                    "best", str(i))
            for i, (cid, message, row) in enumerate(
                zip(history.customer_ids, messages, eligible.tolist(), strict=True)
            )
        ]  # fmt: skip
        return policy.score(history, requests, model).dist
    raise ValueError(f"unknown policy {name!r}: expected one of learned, {', '.join(BASELINES)}")
