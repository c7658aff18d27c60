"""Off-policy estimators on a synthetic bandit whose truth is known."""

from __future__ import annotations

import numpy as np
import pytest

from omni_journey.channels.evaluate import PolicyEstimate, off_policy_estimates
from omni_journey.channels.logged import last_touch

K = 4


def _bandit(n: int, seed: int, logging_epsilon: float) -> dict[str, np.ndarray]:
    """Contexts with a hidden best arm; a logging policy that is epsilon-greedy around
    a mediocre arm; Bernoulli rewards."""
    rng = np.random.default_rng(seed)
    means = rng.uniform(0.02, 0.2, size=(n, K))
    mediocre = np.argsort(means, axis=1)[:, 1]
    logged = np.full((n, K), logging_epsilon / K)
    logged[np.arange(n), mediocre] += 1 - logging_epsilon
    action = np.array([rng.choice(K, p=row) for row in logged])
    reward = (rng.random(n) < means[np.arange(n), action]).astype(float)
    return {"means": means, "logged": logged, "action": action, "reward": reward}


def _target(means: np.ndarray) -> np.ndarray:
    best = np.argmax(means, axis=1)
    return np.eye(K)[best] * 0.9 + 0.1 / K


def _estimate(seed: int, n: int, q_noise: float) -> tuple[float, float, PolicyEstimate]:
    data = _bandit(n, seed, logging_epsilon=0.4)
    target = _target(data["means"])
    truth = 1000 * float((target * data["means"]).sum(axis=1).mean())
    noise = np.random.default_rng(seed + 1000).normal(0, q_noise, size=data["means"].shape)
    rows = np.arange(n)
    estimate = off_policy_estimates(
        target,
        data["logged"],
        data["action"],
        data["logged"][rows, data["action"]],
        data["reward"],
        data["means"] + noise,
        [f"c{i % (n // 2)}" for i in range(n)],  # two decisions per customer
        policy="target",
        bootstrap=200,
        seed=seed,
    )
    return truth, 1000 * float(data["reward"].mean()), estimate


def test_snips_and_dr_intervals_cover_the_true_value_about_95_percent_of_the_time() -> None:
    runs = [_estimate(seed, 3000, q_noise=0.02) for seed in range(40)]
    snips = np.mean([e.snips_low <= t <= e.snips_high for t, _, e in runs])
    dr = np.mean([e.dr_low <= t <= e.dr_high for t, _, e in runs])
    assert snips >= 0.85
    assert dr >= 0.85


def test_a_large_log_tells_the_target_apart_from_the_logging_policy() -> None:
    truth, on_policy, estimate = _estimate(7, 20000, q_noise=0.02)
    assert estimate.dr_low <= truth <= estimate.dr_high
    assert on_policy < estimate.dr_low
    assert estimate.support == pytest.approx(1.0)


def test_support_shows_what_a_deterministic_logger_never_tried() -> None:
    data = _bandit(2000, 4, logging_epsilon=0.0)
    estimate = off_policy_estimates(
        _target(data["means"]),
        data["logged"],
        data["action"],
        np.ones(2000),
        data["reward"],
        data["means"],
        [str(i) for i in range(2000)],
        policy="target",
        bootstrap=50,
    )
    assert estimate.support < 0.2


def test_last_touch_attribution() -> None:
    touches_customer = np.array([0, 0, 1, 0])
    touches_time = np.array([100.0, 200.0, 150.0, 1000.0])
    orders_customer = np.array([0, 0, 1, 2, 1])
    orders_time = np.array([250.0, 50.0, 151.0, 300.0, 150.0 + 500])
    found = last_touch(touches_customer, touches_time, orders_customer, orders_time, 400.0)
    # the order at 250 goes to the touch at 200 (not 100); none before 50; customer 2 has
    # no touches; customer 1's second order is outside the window
    assert found.tolist() == [1, -1, 2, -1, -1]
