"""Offline evaluation recovers what a policy earned when it ran live in the simulator."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from omni_journey.channels.evaluate import evaluate_logged
from omni_journey.channels.features import CHANNELS, History
from omni_journey.channels.learned import LearnedPolicy, Request, parse_costs
from omni_journey.channels.logged import load_logged
from omni_journey.channels.policy import Decision
from omni_journey.settings import Settings
from omni_journey.store import open_store
from tests.integration.channels.conftest import Decide, halves, simulated_shop

COSTS = parse_costs(Settings().channel_costs)
VALUE = 25.0


def _split(chosen: set[str], explorer: LearnedPolicy, rule: LearnedPolicy) -> Decide:
    """``explorer`` decides for the ``chosen`` customers, ``rule`` for the others."""

    def decide(requests: list[Request], history: History | None, now: datetime) -> list[Decision]:
        explore = [r for r in requests if r.customer_id in chosen]
        keep = [r for r in requests if r.customer_id not in chosen]
        made = dict(zip(explore, explorer.decide(None, explore, now, model=None), strict=True))
        made |= dict(zip(keep, rule.decide(None, keep, now, model=None), strict=True))
        return [made[r] for r in requests]

    return decide


def test_the_rule_run_live_lies_within_the_estimate_from_exploration_logs(tmp_path: Path) -> None:
    engine: Engine = open_store(f"sqlite:///{tmp_path / 'omni.db'}")
    sim = simulated_shop(engine, tmp_path, seed=11, customers=4000, days=60)
    explorer = LearnedPolicy(value=VALUE, costs=COSTS, cold_epsilon=1.0, salt="explore")
    rule = LearnedPolicy(value=VALUE, costs=COSTS, cold_epsilon=0.0, salt="rule")
    start = sim.now
    live: set[str] = set()
    for week in range(2):
        logging_half, live_half = halves(sim.reachable(), seed=week)
        live |= {f"{week}:{c}" for c in live_half}
        chosen = set(logging_half)
        decide = _split(chosen, explorer, rule)
        sim.round(decide, sorted(chosen | set(live_half)), f"w{week}")
    with engine.connect() as connection:
        logged = load_logged(connection, since=start - timedelta(days=1), until=sim.now)
    week_of = np.array([int((t - start) / timedelta(days=7)) for t in logged.created_at])
    ran_live = np.array(
        [f"{w}:{c}" in live for w, c in zip(week_of.tolist(), logged.customer_ids, strict=True)]
    )
    cost = np.array([COSTS[c] for c in CHANNELS])
    reward = VALUE * logged.converted - cost[logged.channel]
    truth = 1000 * float(reward[ran_live].mean())
    assert set(logged.policy) == {"learned-v1"}
    assert (logged.propensity[ran_live] == 1.0).all()

    result = evaluate_logged(
        logged.subset(~ran_live), ["rule", "email"], value=VALUE, costs=COSTS, bootstrap=400
    )
    estimate = result.estimates[0]
    assert result.decisions == int((~ran_live).sum()) > 3000
    assert estimate.policy == "rule"
    assert estimate.support == 1.0
    assert estimate.snips_low <= truth <= estimate.snips_high
    assert estimate.dr_low <= truth <= estimate.dr_high
    # the interval is informative: narrower than the spread between what the policies earn
    assert estimate.dr_high - estimate.dr_low < 0.6 * abs(truth)
    engine.dispose()
