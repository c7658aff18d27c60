"""The channel policy's value vs baselines, for the report.

A thin adapter over the channels package's off-policy evaluation
(:func:`omni_journey.channels.logged.load_logged` and
:func:`omni_journey.channels.evaluate.evaluate_logged`): from the logged ``best``
decisions (their propensities) and outcomes (last-touch orders within the attribution
window), it estimates what each baseline (always email, random, the rule, Braze-style
most-engaged) and, when a model is active, the learned policy would have earned, with
doubly robust estimates and bootstrap 95% intervals, next to what the running policy
earned. Value = conversion value x conversions - channel cost, per 1,000 decisions.

It never breaks the report: when the decisions cannot be read or evaluated, the result
has no estimates and a warning that says why (and the log has it as an error).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from omni_journey.channels.artefacts import ModelLoader
from omni_journey.channels.baselines import BASELINES
from omni_journey.channels.evaluate import Evaluation, evaluate_logged
from omni_journey.channels.learned import LearnedPolicy
from omni_journey.channels.logged import load_logged
from omni_journey.channels.model import ChannelModelError

__all__ = ["METHOD", "PolicyRow", "PolicyValue", "policy_value"]

METHOD = (
    "off-policy evaluation of the logged best-channel decisions "
    "(omni_journey.channels.evaluate: doubly robust, self-normalised IPS, "
    "bootstrap 95% intervals over customers)"
)
log = logging.getLogger("omni_journey.analytics")

UNIT = "value per 1,000 decisions (conversion value x conversions - channel cost)"


@dataclass(frozen=True)
class PolicyRow:
    """One policy's estimated value (doubly robust) and interval; ``snips_*`` the
    inverse-propensity estimate; ``support`` the share of its choices the running
    policy could have made (below 1, part of the estimate rests on the reward model)."""

    policy: str
    value: float
    low: float
    high: float
    snips: float | None = None
    snips_low: float | None = None
    snips_high: float | None = None
    support: float | None = None
    effective_sample_size: float | None = None


@dataclass(frozen=True)
class PolicyValue:
    """What the running policy earned (``logged``) and what others would have."""

    since: datetime | None
    until: datetime | None
    decisions: int
    customers: int
    logged_policies: dict[str, int]
    logged: PolicyRow | None
    estimates: list[PolicyRow]
    conversion_value: float
    costs: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    method: str = METHOD
    unit: str = UNIT

    @property
    def best(self) -> PolicyRow | None:
        return max(self.estimates, key=lambda row: row.value) if self.estimates else None


def _finite(value: float) -> float | None:
    return value if value == value else None  # NaN -> None


def _from_evaluation(evaluation: Evaluation) -> PolicyValue:
    logged = None
    if evaluation.decisions:
        names = ", ".join(sorted(evaluation.logged_policies)) or "logged"
        logged = PolicyRow(
            f"running policy ({names})",
            evaluation.logged,
            evaluation.logged_low,
            evaluation.logged_high,
        )
    estimates = [
        PolicyRow(
            e.policy,
            e.dr,
            e.dr_low,
            e.dr_high,
            _finite(e.snips),
            _finite(e.snips_low),
            _finite(e.snips_high),
            e.support,
            e.effective_sample_size,
        )
        for e in evaluation.estimates
    ]
    return PolicyValue(
        since=evaluation.since,
        until=evaluation.until,
        decisions=evaluation.decisions,
        customers=evaluation.customers,
        logged_policies=dict(evaluation.logged_policies),
        logged=logged,
        estimates=estimates,
        conversion_value=evaluation.value,
        costs=dict(evaluation.costs),
        warnings=list(evaluation.warnings),
    )


def policy_value(
    connection: Connection,
    *,
    now: datetime,
    days: int = 180,
    conversion_value: float = 25.0,
    costs: Mapping[str, float] | None = None,
    attribution_hours: float = 72.0,
    models_dir: Path | None = None,
    bootstrap: int = 200,
    seed: int = 0,
) -> PolicyValue:
    """Evaluate the baselines (and the active model, if any) on the last ``days`` of
    logged decisions whose attribution window has closed by ``now``."""
    costs = dict(costs or {})
    policies: list[str] = list(BASELINES)
    model = None
    learned = None
    if models_dir is not None:
        model = ModelLoader(models_dir).get(connection)
        if model is not None:
            learned = LearnedPolicy(model=model, value=conversion_value, costs=costs)
            policies.append("learned")
    try:
        # a savepoint: a failed read leaves the caller's transaction usable
        with connection.begin_nested():
            logged = load_logged(
                connection,
                since=now - timedelta(days=days),
                until=now,
                attribution_hours=attribution_hours,
            )
    except SQLAlchemyError as error:
        # the first line names the problem; the rest may quote parameters (customer ids)
        problem = str(error).splitlines()[0] if str(error) else type(error).__name__
        log.error("policy value: the logged decisions could not be read: %s", problem)
        return _unavailable(
            conversion_value, costs, f"the logged decisions could not be read: {problem}"
        )
    try:
        evaluation = evaluate_logged(
            logged,
            policies,
            value=conversion_value,
            costs=costs,
            model=model,
            learned=learned,
            bootstrap=bootstrap,
            seed=seed,
            trained_at=now,
        )
    except (ChannelModelError, ValueError) as error:
        log.error("policy value: the evaluation could not run: %s", error)
        return _unavailable(
            conversion_value,
            costs,
            f"the evaluation could not run on these decisions: {error}",
            decisions=len(logged),
            customers=len(set(logged.customer_ids)),
        )
    return _from_evaluation(evaluation)


def _unavailable(
    conversion_value: float,
    costs: dict[str, float],
    warning: str,
    *,
    decisions: int = 0,
    customers: int = 0,
) -> PolicyValue:
    return PolicyValue(
        since=None,
        until=None,
        decisions=decisions,
        customers=customers,
        logged_policies={},
        logged=None,
        estimates=[],
        conversion_value=conversion_value,
        costs=costs,
        warnings=[warning],
    )
