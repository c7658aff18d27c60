"""Purchase cycles: when will a customer buy a category again, and is that a real habit?

Pure: no I/O, no clock. Times are aware datetimes; intervals are in days.

* **Occasions.** Purchases of a category closer than ``merge_within_days`` are one
  occasion; the gaps between occasions are the intervals (the last ``max_intervals``).
* **Regularity.** Random buying (a Poisson process) has exponential gaps, whose
  log-gaps have variance pi^2/6 whatever the rate. The test statistic is the sample
  variance of a customer's log-gaps; its distribution under that null depends only on
  the number of gaps, so the p-value is exact (a seeded Monte Carlo table). A customer
  fires only with ``min_intervals`` gaps and ``p <= alpha``.
* **Shrinkage.** Log-gaps ~ N(mu, sigma^2). Empirical Bayes per category, fitted on the
  regular customers: mu ~ N(m, tau^2) and sigma^2 pulled toward the category's pooled
  within-customer variance with ``prior_strength`` pseudo-gaps. Short histories lean on
  the category; long ones on the customer.
* **Timing.** The predictive next gap is log-normal; the reminder is due at its
  ``fire_quantile`` (25th percentile: early, so few reminders arrive after the purchase),
  the window spans the ``window`` quantiles, ``predicted_at`` is the median.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from statistics import NormalDist

import numpy as np

__all__ = [
    "CategoryPrior",
    "CycleSettings",
    "Prediction",
    "fit_priors",
    "log_intervals",
    "occasions",
    "predict_next",
    "regularity_p_value",
]

DAY_SECONDS = 86400.0
_NORMAL = NormalDist()


@dataclass(frozen=True)
class CycleSettings:
    """How purchase cycles are detected and timed (the defaults are the back-tested ones)."""

    min_intervals: int = 3
    alpha: float = 0.002
    max_intervals: int = 8
    merge_within_days: float = 1.0
    prior_strength: float = 4.0
    min_regular_customers: int = 5
    fire_quantile: float = 0.25
    window: tuple[float, float] = (0.10, 0.90)
    null_draws: int = 20_000
    seed: int = 20261123


@dataclass(frozen=True)
class CategoryPrior:
    """A category's empirical-Bayes prior for log-gaps (days) and its median gap."""

    category: str
    mean_log: float
    between_var: float
    within_var: float
    median_days: float
    regular_customers: int

    @property
    def typical_days(self) -> float:
        return math.exp(self.mean_log)


@dataclass(frozen=True)
class Prediction:
    """The next purchase of one customer in one category."""

    last_purchase_at: datetime
    predicted_at: datetime
    window_start: datetime
    window_end: datetime
    due_at: datetime
    intervals: int
    p_value: float
    regular: bool
    mean_log: float
    spread: float

    @property
    def confidence(self) -> float:
        """1 - the p-value of random buying: how sure we are the habit is real."""
        return round(1.0 - self.p_value, 4)


def occasions(times: Iterable[datetime], merge_within_days: float = 1.0) -> list[datetime]:
    """Sorted purchase times with those within ``merge_within_days`` of the previous
    occasion folded into it."""
    result: list[datetime] = []
    for at in sorted(times):
        if result and (at - result[-1]).total_seconds() < merge_within_days * DAY_SECONDS:
            continue
        result.append(at)
    return result


def log_intervals(times: Sequence[datetime], max_intervals: int) -> np.ndarray:
    """Natural logs of the last ``max_intervals`` gaps between occasions, in days."""
    if len(times) < 2:
        return np.empty(0)
    seconds = np.diff(np.array([t.timestamp() for t in times[-(max_intervals + 1) :]]))
    return np.log(np.maximum(seconds / DAY_SECONDS, 1e-3))


@lru_cache(maxsize=64)
def _null_variances(n: int, draws: int, seed: int) -> np.ndarray:
    """Sorted sample variances of n log-exponential gaps (rate-free), ``draws`` of them."""
    rng = np.random.default_rng([seed, n])
    logs = np.log(rng.exponential(size=(draws, n)))
    return np.sort(logs.var(axis=1, ddof=1))


def regularity_p_value(logs: np.ndarray, settings: CycleSettings = CycleSettings()) -> float:
    """P(variance of log-gaps this small | random buying). Small p: a real cycle."""
    n = len(logs)
    if n < 2:
        return 1.0
    table = _null_variances(n, settings.null_draws, settings.seed)
    observed = float(np.var(logs, ddof=1))
    return (int(np.searchsorted(table, observed, side="right")) + 1) / (len(table) + 1)


def fit_priors(
    series: Mapping[str, Sequence[np.ndarray]], settings: CycleSettings = CycleSettings()
) -> dict[str, CategoryPrior]:
    """Per category, from every customer's log-gaps in it: the prior of the regular ones."""
    priors: dict[str, CategoryPrior] = {}
    for category, customers in series.items():
        pooled = np.concatenate([logs for logs in customers if len(logs)] or [np.empty(0)])
        if not len(pooled):
            continue
        median_days = float(np.exp(np.median(pooled)))
        regular = [
            logs
            for logs in customers
            if len(logs) >= settings.min_intervals
            and regularity_p_value(logs, settings) <= settings.alpha
        ]
        if len(regular) >= settings.min_regular_customers:
            dof = sum(len(logs) - 1 for logs in regular)
            within = sum(float(np.var(logs, ddof=1)) * (len(logs) - 1) for logs in regular) / dof
            means = np.array([logs.mean() for logs in regular])
            noise = float(np.mean([within / len(logs) for logs in regular]))
            between = max(float(np.var(means, ddof=1)) - noise, 0.01)
            priors[category] = CategoryPrior(
                category,
                float(means.mean()),
                between,
                max(within, 1e-4),
                median_days,
                len(regular),
            )
        else:  # too few regular buyers to learn from: a vague prior around the median
            priors[category] = CategoryPrior(
                category, math.log(median_days), 0.25, 0.09, median_days, len(regular)
            )
    return priors


def predict_next(
    times: Sequence[datetime], prior: CategoryPrior, settings: CycleSettings = CycleSettings()
) -> Prediction | None:
    """The next purchase after ``times`` (occasions, sorted); None with fewer than two."""
    logs = log_intervals(times, settings.max_intervals)
    n = len(logs)
    if n == 0:
        return None
    p_value = regularity_p_value(logs, settings)
    sample_var = float(np.var(logs, ddof=1)) if n > 1 else prior.within_var
    strength = settings.prior_strength
    within = (strength * prior.within_var + (n - 1) * sample_var) / (strength + n - 1)
    precision = n / within + 1.0 / prior.between_var
    mean_log = (float(logs.sum()) / within + prior.mean_log / prior.between_var) / precision
    spread = math.sqrt(within + 1.0 / precision)
    last = times[-1]

    def at(quantile: float) -> datetime:
        days = math.exp(mean_log + _NORMAL.inv_cdf(quantile) * spread)
        return last + timedelta(days=days)

    low, high = settings.window
    return Prediction(
        last_purchase_at=last,
        predicted_at=at(0.5),
        window_start=at(low),
        window_end=at(high),
        due_at=at(settings.fire_quantile),
        intervals=n,
        p_value=p_value,
        regular=n >= settings.min_intervals and p_value <= settings.alpha,
        mean_log=mean_log,
        spread=spread,
    )


def window_at(
    last: datetime, center_days: float, spread: float, settings: CycleSettings = CycleSettings()
) -> tuple[datetime, datetime, datetime]:
    """(window_start, due_at, window_end) for a log-normal gap around ``center_days``:
    the same shape the method uses, for baselines."""

    def at(quantile: float) -> datetime:
        return last + timedelta(days=center_days * math.exp(_NORMAL.inv_cdf(quantile) * spread))

    low, high = settings.window
    return at(low), at(settings.fire_quantile), at(high)
