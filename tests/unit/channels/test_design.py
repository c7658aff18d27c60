"""Model inputs: empirical-Bayes shrinkage of per-channel rates, machine openers."""

from __future__ import annotations

import numpy as np
import pytest

from omni_journey.channels.design import (
    FeatureSpec,
    candidate_rows,
    design_parts,
    feature_names,
    machine_opener,
)
from omni_journey.channels.features import CHANNELS
from tests.unit.channels.support import history

EMAIL, SMS = CHANNELS.index("email"), CHANNELS.index("sms")


def _rate_column(spec: FeatureSpec, rate: str) -> int:
    names = feature_names(spec)
    shared = len(names) - len(design_parts(history(1), ["x"], spec)[1][0][0])
    return names.index(f"{rate}_rate") - shared


def _population(rates: np.ndarray, sent: int) -> FeatureSpec:
    """Customers with ``sent`` SMS each, clicking at their own ``rates``."""
    counts: dict[tuple[int, str, str], float] = {}
    rng = np.random.default_rng(1)
    for i, rate in enumerate(rates.tolist()):
        counts[(i, "sms", "sent")] = sent
        counts[(i, "sms", "clicked")] = float(rng.binomial(sent, rate))
    return FeatureSpec.fit(history(len(rates), counts=counts), ["cart_reminder"] * len(rates))


def test_the_prior_is_weaker_when_customers_really_differ() -> None:
    clicked = 1  # the spec's rates: opened, clicked, engaged, converted
    alike = _population(np.full(2000, 0.1), sent=10)
    different = _population(np.where(np.arange(2000) % 2 == 0, 0.02, 0.3), sent=10)
    alike_strength = alike.strength[SMS][clicked]
    different_strength = different.strength[SMS][clicked]
    # pure binomial noise: the population rate is worth many sends; real differences
    # between customers: a customer's own ten sends count for much more
    assert alike_strength > 50
    # rates 0.02 / 0.3: mean 0.16, variance 0.0196, so 0.16 * 0.84 / 0.0196 - 1 = 5.9
    assert 3 < different_strength < 10
    assert different.rates[SMS][clicked] == pytest.approx(0.16, abs=0.02)


def test_shrinkage_pulls_a_short_history_toward_the_population() -> None:
    spec = FeatureSpec(
        messages=(),
        attributes=(),
        rates=((0.2, 0.05, 0.2, 0.01),) * len(CHANNELS),
        strength=((20.0, 20.0, 20.0, 20.0),) * len(CHANNELS),
    )
    # one click in one send, and 10 clicks in 20 sends: same 50-100 % raw rate
    hist = history(
        3,
        counts={
            (0, "sms", "sent"): 1,
            (0, "sms", "clicked"): 1,
            (1, "sms", "sent"): 20,
            (1, "sms", "clicked"): 10,
        },
    )
    column = _rate_column(spec, "clicked")
    own = design_parts(hist, ["x"] * 3, spec)[1][SMS][:, column]
    p = 1 / (1 + np.exp(-own))
    assert p[0] == pytest.approx((1 + 20 * 0.05) / 21)
    assert p[1] == pytest.approx((10 + 20 * 0.05) / 40)
    assert p[2] == pytest.approx(0.05)  # no history: the population's rate


def test_machine_openers_email_opens_are_replaced_by_the_prior() -> None:
    counts = {
        (0, "email", "sent"): 10,
        (0, "email", "opened"): 10,  # every email "opened": a mail client prefetching
        (0, "email", "clicked"): 2,
        (1, "email", "sent"): 10,
        (1, "email", "opened"): 4,
        (2, "email", "sent"): 2,
        (2, "email", "opened"): 2,  # too few sends to tell
    }
    hist = history(3, counts=counts)
    assert machine_opener(hist).tolist() == [True, False, False]
    spec = FeatureSpec(
        messages=(),
        attributes=(),
        rates=((0.2, 0.05, 0.2, 0.01),) * len(CHANNELS),
        strength=((10.0,) * 4,) * len(CHANNELS),
    )
    own = design_parts(hist, ["x"] * 3, spec)[1][EMAIL]
    opened = 1 / (1 + np.exp(-own[:, _rate_column(spec, "opened")]))
    engaged = 1 / (1 + np.exp(-own[:, _rate_column(spec, "engaged")]))
    assert opened[0] == pytest.approx(0.2)
    assert engaged[0] == pytest.approx((2 + 10 * 0.2) / 20)  # its clicks still count
    assert opened[1] == pytest.approx((4 + 10 * 0.2) / 20)
    shared = design_parts(hist, ["x"] * 3, spec)[0]
    flag = feature_names(spec).index("email_machine_opens")
    assert shared[:, flag].tolist() == [1.0, 0.0, 0.0]


def test_population_email_rates_leave_machine_openers_out() -> None:
    counts: dict[tuple[int, str, str], float] = {}
    for i in range(400):
        counts[(i, "email", "sent")] = 10
        counts[(i, "email", "opened")] = 10 if i % 2 else 2
    spec = FeatureSpec.fit(history(400, counts=counts), ["cart_reminder"] * 400)
    assert spec.rates[EMAIL][0] == pytest.approx(0.2, abs=0.01)


def test_the_spec_round_trips_and_reads_specs_without_strength() -> None:
    spec = _population(np.full(500, 0.1), sent=10)
    assert FeatureSpec.from_json(spec.as_json()) == spec
    old = spec.as_json()
    del old["strength"]
    legacy = FeatureSpec.from_json(old)
    assert legacy.strength == ()
    hist = history(2, counts={(0, "sms", "sent"): 3})
    assert np.isfinite(np.column_stack(candidate_rows(hist, ["x", "y"], legacy))).all()
