"""Small, exact statistics for conversion rates: no I/O, no numpy.

* :func:`wilson_interval`: the Wilson score interval of one proportion (it stays in
  [0, 1] and behaves at 0 and n successes, where the textbook Wald interval collapses);
* :func:`newcombe_interval`: Newcombe's hybrid score interval (his method 10) for the
  difference of two independent proportions, built from the two Wilson intervals;
* :func:`ratio_interval`: the Katz log interval of a ratio of two proportions (the
  relative lift), defined when both arms have at least one success;
* :func:`entries_needed`: how many entries in total, at a given split, a two-sided test
  at 5% with 80% power needs to tell a difference of the given size from chance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

__all__ = [
    "Interval",
    "entries_needed",
    "newcombe_interval",
    "ratio_interval",
    "wilson_interval",
    "z_value",
]


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval ``[low, high]``."""

    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def z_value(confidence: float = 0.95) -> float:
    """The two-sided standard normal quantile: 1.96 for 95%."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def _check_counts(successes: int, trials: int) -> None:
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> Interval | None:
    """The Wilson score interval of ``successes / trials``; ``None`` when ``trials`` is 0."""
    _check_counts(successes, trials)
    if trials == 0:
        return None
    z = z_value(confidence)
    n = float(trials)
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # exact at the edges (0 and n successes), whatever the rounding
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return Interval(low, high)


def newcombe_interval(
    successes_a: int,
    trials_a: int,
    successes_b: int,
    trials_b: int,
    confidence: float = 0.95,
) -> Interval | None:
    """Newcombe's hybrid score interval of ``p_a - p_b``; ``None`` when an arm is empty."""
    a = wilson_interval(successes_a, trials_a, confidence)
    b = wilson_interval(successes_b, trials_b, confidence)
    if a is None or b is None:
        return None
    p_a = successes_a / trials_a
    p_b = successes_b / trials_b
    diff = p_a - p_b
    low = diff - math.sqrt((p_a - a.low) ** 2 + (b.high - p_b) ** 2)
    high = diff + math.sqrt((a.high - p_a) ** 2 + (p_b - b.low) ** 2)
    return Interval(max(-1.0, low), min(1.0, high))


def ratio_interval(
    successes_a: int,
    trials_a: int,
    successes_b: int,
    trials_b: int,
    confidence: float = 0.95,
) -> Interval | None:
    """The Katz log interval of ``p_a / p_b``; ``None`` unless both arms have a success."""
    _check_counts(successes_a, trials_a)
    _check_counts(successes_b, trials_b)
    if successes_a == 0 or successes_b == 0:
        return None
    ratio = (successes_a / trials_a) / (successes_b / trials_b)
    se = math.sqrt(1 / successes_a - 1 / trials_a + 1 / successes_b - 1 / trials_b)
    z = z_value(confidence)
    return Interval(ratio * math.exp(-z * se), ratio * math.exp(z * se))


def entries_needed(
    rate_treated: float,
    rate_holdout: float,
    holdout_share: float,
    *,
    confidence: float = 0.95,
    power: float = 0.8,
) -> int | None:
    """Total entries (treated + holdout, split ``holdout_share``) a two-sided test of
    two proportions needs to detect ``rate_treated - rate_holdout`` with ``power``.

    ``None`` when there is no difference to detect or the split leaves an arm empty.
    The classic normal-approximation formula for unequal groups (Fleiss, no continuity
    correction).
    """
    if not 0.0 < holdout_share < 1.0:
        return None
    delta = rate_treated - rate_holdout
    if delta == 0.0:
        return None
    k = (1.0 - holdout_share) / holdout_share  # treated per holdout entry
    z_alpha = z_value(confidence)
    z_beta = NormalDist().inv_cdf(power)
    pooled = (rate_holdout + k * rate_treated) / (1.0 + k)
    spread = z_alpha * math.sqrt(pooled * (1 - pooled) * (1 + 1 / k)) + z_beta * math.sqrt(
        rate_holdout * (1 - rate_holdout) + rate_treated * (1 - rate_treated) / k
    )
    holdout_entries = spread**2 / delta**2
    return math.ceil(holdout_entries * (1.0 + k))
