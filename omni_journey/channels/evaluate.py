"""Off-policy evaluation: what would another channel policy have earned?

From logged ``best`` decisions (eligible set, the distribution the running policy drew
from, the chosen channel and its propensity) and their outcomes, with reward
``r = value * converted - cost(channel)``:

* **logged**: the running policy's own average reward (on-policy, no model needed);
* **SNIPS**, self-normalised inverse propensity scoring:
  ``sum(w_i r_i) / sum(w_i)`` with ``w_i = pi(a_i | x_i) / mu(a_i | x_i)``;
* **DR**, doubly robust: ``mean(sum_c pi(c|x_i) q(x_i, c) + w_i (r_i - q(x_i, a_i)))``
  with a reward model ``q = value * p(convert | x, c) - cost(c)`` cross-fitted on the
  same logs (two folds by customer, so no decision is scored by a model that saw it);
* **DM**, the reward model alone, for reference.

Intervals are percentile bootstraps over customers (a customer's decisions resample
together). ``support`` is the share of the candidate's probability mass on channels
the running policy could have chosen: below 1, IPS cannot see part of what the
candidate does and DR leans on its reward model there. Values are per 1,000 decisions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression

from omni_journey.channels.baselines import distribution
from omni_journey.channels.design import design_parts
from omni_journey.channels.features import CHANNELS, FloatArray
from omni_journey.channels.learned import LearnedPolicy
from omni_journey.channels.logged import LoggedDecisions
from omni_journey.channels.model import ChannelModel, ChannelModelError, fit_model

__all__ = ["Evaluation", "PolicyEstimate", "evaluate_logged", "off_policy_estimates"]

_PER = 1000.0
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class PolicyEstimate:
    """A policy's estimated reward per 1,000 decisions, with 95% intervals."""

    policy: str
    snips: float
    snips_low: float
    snips_high: float
    dr: float
    dr_low: float
    dr_high: float
    dm: float
    support: float
    effective_sample_size: float


@dataclass
class Evaluation:
    decisions: int
    customers: int
    logged: float
    logged_low: float
    logged_high: float
    logged_policies: dict[str, int]
    estimates: list[PolicyEstimate]
    value: float
    costs: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"] = self.since.isoformat() if self.since else None
        data["until"] = self.until.isoformat() if self.until else None
        return data


def off_policy_estimates(
    target: FloatArray,
    logged_distribution: FloatArray,
    action: np.ndarray,
    propensity: FloatArray,
    reward: FloatArray,
    q: FloatArray,
    groups: Sequence[str],
    *,
    policy: str,
    bootstrap: int = 500,
    seed: int = 0,
) -> PolicyEstimate:
    """SNIPS, DR and DM estimates of ``target`` (n, channels) from logged data."""
    n = len(action)
    rows = np.arange(n)
    w = target[rows, action] / np.maximum(propensity, 1e-12)
    direct = (target * np.nan_to_num(q)).sum(axis=1)
    dr_terms = direct + w * (reward - np.nan_to_num(q[rows, action]))
    codes, inverse = np.unique(np.asarray(groups), return_inverse=True)
    g = len(codes)
    per = np.stack(
        [np.bincount(inverse, weights=x, minlength=g) for x in (w * reward, w, dr_terms)]
    )
    count = np.bincount(inverse, minlength=g).astype(float)
    rng = np.random.default_rng(seed)
    snips_draws, dr_draws = [], []
    for _ in range(bootstrap):
        k = np.bincount(rng.integers(0, g, size=g), minlength=g).astype(float)
        wr, ww, dr = per @ k
        snips_draws.append(wr / ww if ww > 0 else np.nan)
        dr_draws.append(dr / max(float(count @ k), 1.0))
    support = float((target * (logged_distribution > 0)).sum(axis=1).mean()) if n else 0.0
    ess = float(w.sum() ** 2 / max((w**2).sum(), 1e-12))
    snips = float((w * reward).sum() / w.sum()) if w.sum() > 0 else float("nan")
    low_s, high_s = _interval(snips_draws)
    low_d, high_d = _interval(dr_draws)
    return PolicyEstimate(
        policy=policy,
        snips=_PER * snips,
        snips_low=_PER * low_s,
        snips_high=_PER * high_s,
        dr=_PER * float(dr_terms.mean()),
        dr_low=_PER * low_d,
        dr_high=_PER * high_d,
        dm=_PER * float(direct.mean()),
        support=support,
        effective_sample_size=ess,
    )


def _interval(draws: Sequence[float]) -> tuple[float, float]:
    values = np.asarray(draws, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def _reward_model(
    logged: LoggedDecisions, value: float, cost: FloatArray, trained_at: datetime
) -> FloatArray:
    """Cross-fitted q(x, c) for every decision and channel (two folds by customer):
    ``value * (p_click_order(x, c) + p_other(x)) - cost(c)`` where the channel model
    gives conversions through a click and a logistic regression on the customer-level
    features gives the rest (orders after a send without a click: organic buying, the
    same whatever the channel)."""
    customers = sorted(set(logged.customer_ids))
    half = {c: i % 2 for i, c in enumerate(customers)}
    fold = np.array([half[c] for c in logged.customer_ids])
    q = np.zeros((len(logged), len(CHANNELS)))
    other = logged.converted & ~logged.clicked
    for k in (0, 1):
        train, test = fold != k, fold == k
        if not test.any():
            continue
        part = logged.subset(test)
        try:
            model = fit_model(
                logged.subset(train).training_set(),
                version="dr-reward-model",
                trained_at=trained_at,
            )
            p = model.predict(part.history, part.messages)
        except ChannelModelError:
            model, p = None, np.full((int(test.sum()), len(CHANNELS)), np.nan)
        fallback = float(logged.converted[train].mean()) if train.any() else 0.0
        p = np.where(np.isnan(p), fallback, p)
        if model is not None:
            p = p + _other_conversions(logged.subset(train), other[train], part, model)
        q[test] = value * p - cost
    return q


def _other_conversions(
    train: LoggedDecisions, label: BoolArray, test: LoggedDecisions, model: ChannelModel
) -> FloatArray:
    """p(an order after the send without a click | customer), (n, 1)."""
    if not label.any() or label.all():
        return np.full((len(test), 1), float(label.mean()))
    x_train = design_parts(train.history, train.messages, model.spec)[0]
    x_test = design_parts(test.history, test.messages, model.spec)[0]
    mean, scale = x_train.mean(axis=0), x_train.std(axis=0)
    scale = np.where(scale < 1e-9, 1.0, scale)
    fitted = LogisticRegression(C=0.1, max_iter=1000).fit((x_train - mean) / scale, label)
    return np.asarray(fitted.predict_proba((x_test - mean) / scale)[:, 1:])


def evaluate_logged(
    logged: LoggedDecisions,
    policies: Sequence[str],
    *,
    value: float,
    costs: Mapping[str, float],
    model: ChannelModel | None = None,
    learned: LearnedPolicy | None = None,
    bootstrap: int = 500,
    seed: int = 0,
    trained_at: datetime | None = None,
) -> Evaluation:
    """Estimate each of ``policies`` on the ``best`` decisions in ``logged``."""
    mask = np.array([c == "best" for c in logged.choice], dtype=bool)
    mask &= logged.probabilities[np.arange(len(logged)), logged.channel] > 0
    data = logged.subset(mask)
    warnings: list[str] = []
    cost = np.array([float(costs.get(c, 0.0)) for c in CHANNELS])
    reward = value * data.converted - cost[data.channel]
    n = len(data)
    policies_seen: dict[str, int] = {}
    for name in data.policy:
        policies_seen[name] = policies_seen.get(name, 0) + 1
    if n == 0:
        nan = float("nan")
        return Evaluation(
            0, 0, nan, nan, nan, policies_seen, [], value, dict(costs), ["no logged decisions"]
        )
    q = _reward_model(data, value, cost, trained_at or max(data.created_at))
    estimates = []
    codes = np.unique(np.asarray(data.customer_ids), return_inverse=True)[1]
    logged_draws = []
    rng = np.random.default_rng(seed)
    g = int(codes.max()) + 1
    sums = np.bincount(codes, weights=reward, minlength=g)
    counts = np.bincount(codes, minlength=g).astype(float)
    for _ in range(bootstrap):
        k = np.bincount(rng.integers(0, g, size=g), minlength=g).astype(float)
        logged_draws.append(float(sums @ k) / max(float(counts @ k), 1.0))
    low, high = _interval(logged_draws)
    if float(np.mean(data.probabilities.max(axis=1) >= 1.0)) > 0.5:
        warnings.append(
            "most logged decisions were deterministic (no exploration): IPS cannot see what "
            "other policies would have done there; read DR/DM with care"
        )
    for name in policies:
        target = distribution(
            name, data.history, data.eligible, data.messages, model=model, policy=learned
        )
        estimate = off_policy_estimates(
            target,
            data.probabilities,
            data.channel,
            data.propensity,
            reward,
            q,
            data.customer_ids,
            policy=name,
            bootstrap=bootstrap,
            seed=seed,
        )
        if estimate.support < 0.99:
            warnings.append(
                f"{name}: {1 - estimate.support:.0%} of its choices were never possible under "
                "the logged policy"
            )
        estimates.append(estimate)
    return Evaluation(
        decisions=n,
        customers=g,
        logged=_PER * float(reward.mean()),
        logged_low=_PER * low,
        logged_high=_PER * high,
        logged_policies=policies_seen,
        estimates=estimates,
        value=value,
        costs=dict(costs),
        warnings=warnings,
        since=min(data.created_at),
        until=max(data.created_at),
    )
