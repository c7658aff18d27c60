"""The purchase-cycle model: occasions, the regularity test, shrinkage and timing."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from omni_journey.cycles.model import (
    CategoryPrior,
    CycleSettings,
    fit_priors,
    log_intervals,
    occasions,
    predict_next,
    regularity_p_value,
)

START = datetime(2025, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
COFFEE = CategoryPrior("coffee", math.log(14), 0.04, 0.02, 14.0, 50)


def times(*gaps: float) -> list[datetime]:
    result = [START]
    for gap in gaps:
        result.append(result[-1] + gap * DAY)
    return result


def test_purchases_on_the_same_day_are_one_occasion() -> None:
    hour = timedelta(hours=1)
    merged = occasions([START + 3 * hour, START, START + 14 * DAY, START + 14 * DAY + hour])
    assert merged == [START, START + 14 * DAY]


def test_log_intervals_keep_the_most_recent_gaps() -> None:
    logs = log_intervals(times(10, 20, 30, 40), max_intervals=2)
    assert np.allclose(np.exp(logs), [30, 40])


def test_the_regularity_test_is_calibrated_under_random_buying() -> None:
    rng = np.random.default_rng(3)
    settings = CycleSettings()
    p_values = np.array(
        [regularity_p_value(np.log(rng.exponential(20.0, size=5)), settings) for _ in range(3000)]
    )
    # p is uniform under the null: about 5% below 0.05, about 50% below 0.5
    assert 0.035 < float(np.mean(p_values <= 0.05)) < 0.065
    assert 0.46 < float(np.mean(p_values <= 0.5)) < 0.54


def test_regular_gaps_have_a_small_p_value_and_irregular_ones_do_not() -> None:
    settings = CycleSettings()
    assert regularity_p_value(np.log([14, 15, 13, 14, 14.5]), settings) < 0.002
    assert regularity_p_value(np.log([3, 40, 12, 25, 7]), settings) > 0.05
    assert regularity_p_value(np.log([14.0]), settings) == 1.0  # one gap proves nothing


def test_short_histories_shrink_toward_the_category() -> None:
    short = predict_next(times(20), COFFEE)
    long = predict_next(times(20, 20, 20, 20, 20, 20, 20, 20), COFFEE)
    assert short is not None and long is not None
    short_days = (short.predicted_at - short.last_purchase_at) / DAY
    long_days = (long.predicted_at - long.last_purchase_at) / DAY
    assert 14 < short_days < 18  # one 20-day gap, pulled most of the way to 14
    assert 19 < long_days < 20.5  # eight 20-day gaps: the customer's own rhythm wins
    assert short.spread > long.spread


def test_the_reminder_is_due_early_in_the_window() -> None:
    prediction = predict_next(times(14, 15, 13, 14, 14), COFFEE)
    assert prediction is not None and prediction.regular
    assert prediction.window_start < prediction.due_at < prediction.predicted_at
    assert prediction.predicted_at < prediction.window_end
    at_median = predict_next(times(14, 15, 13, 14, 14), COFFEE, CycleSettings(fire_quantile=0.5))
    assert at_median is not None and at_median.due_at == at_median.predicted_at
    assert prediction.confidence > 0.99


def test_silent_without_enough_gaps_or_with_irregular_ones() -> None:
    assert predict_next([START], COFFEE) is None
    two_gaps = predict_next(times(14, 14), COFFEE)
    assert two_gaps is not None and not two_gaps.regular  # min_intervals is 3
    irregular = predict_next(times(3, 40, 12, 25, 7), COFFEE)
    assert irregular is not None and not irregular.regular


def test_priors_come_from_the_regular_customers() -> None:
    rng = np.random.default_rng(1)
    regular = [np.log(20 * np.exp(rng.normal(0, 0.1, size=6))) for _ in range(30)]
    noise = [np.log(rng.exponential(20, size=6)) for _ in range(30)]
    prior = fit_priors({"tea": regular + noise})["tea"]
    assert 18 < prior.typical_days < 22
    assert math.sqrt(prior.within_var) == pytest.approx(0.1, abs=0.03)
    assert prior.regular_customers >= 25
    vague = fit_priors({"rare": noise[:3]})["rare"]
    assert vague.regular_customers == 0 and vague.median_days > 0
