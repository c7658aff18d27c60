"""Lift from counts: the numbers and the verdict, including every empty case."""

from __future__ import annotations

import pytest

from omni_journey.analytics.lift import MIN_ARM, Rate, judge
from omni_journey.analytics.stats import newcombe_interval


def test_rate_of_nothing_is_none() -> None:
    assert Rate.of(0, 0) == Rate(0, 0, None, None, None)
    rate = Rate.of(0, 40)
    assert rate.rate == 0.0 and rate.low == 0.0 and rate.high is not None


def test_no_entries_at_all() -> None:
    lift = judge("j", 0, 0, 0, 0)
    assert lift.absolute is None and lift.relative is None and lift.entries_needed is None
    assert not lift.significant
    assert lift.verdict == "no entries yet: nothing to measure."


def test_no_holdout_says_the_effect_cannot_be_measured() -> None:
    lift = judge("j", 30, 200, 0, 0)
    assert lift.treated.rate == pytest.approx(0.15)
    assert lift.holdout.rate is None
    assert lift.absolute is None and lift.absolute_low is None
    assert not lift.significant
    assert lift.verdict.startswith("no holdout")
    assert "holdout" in lift.verdict and "10%" in lift.verdict


def test_everyone_in_the_holdout() -> None:
    assert judge("j", 0, 0, 3, 20).verdict.startswith("every entry so far is in the holdout")


def test_no_conversions_in_either_group() -> None:
    lift = judge("j", 0, 400, 0, 40)
    assert lift.absolute == 0.0
    assert lift.relative is None  # no holdout conversions: no ratio
    assert lift.absolute_low is not None and lift.absolute_high is not None
    assert lift.absolute_low < 0 < lift.absolute_high
    assert lift.verdict.startswith("no conversions yet")


def test_a_clear_lift_is_significant_and_says_so() -> None:
    lift = judge("j", 300, 1000, 10, 100)  # 30% vs 10%
    assert lift.absolute == pytest.approx(0.2)
    assert lift.relative == pytest.approx(2.0)
    expected = newcombe_interval(300, 1000, 10, 100)
    assert expected is not None
    assert (lift.absolute_low, lift.absolute_high) == (expected.low, expected.high)
    assert lift.relative_low is not None and lift.relative_low > 0
    assert lift.significant
    assert lift.verdict.startswith("the journey lifts conversion")
    assert "+20.0 pp" in lift.verdict


def test_a_significant_drop_warns() -> None:
    lift = judge("j", 50, 1000, 30, 100)  # 5% vs 30%
    assert lift.significant and lift.absolute is not None and lift.absolute < 0
    assert lift.verdict.startswith("treated customers convert less than the holdout")


def test_small_groups_are_too_early() -> None:
    lift = judge("j", 5, 40, 1, MIN_ARM - 1)
    assert not lift.significant
    assert lift.verdict.startswith("not significant yet: only")


def test_not_significant_says_how_many_entries_it_would_take() -> None:
    lift = judge("j", 110, 1000, 10, 100)  # 11% vs 10% with a 9% holdout
    assert not lift.significant
    assert lift.entries_needed is not None and lift.entries_needed > 1100
    assert f"{lift.entries_needed:,} entries in total" in lift.verdict
    assert f"{lift.entries_needed - 1100:,} more" in lift.verdict


def test_no_difference_at_all_needs_no_sample_size() -> None:
    lift = judge("j", 100, 1000, 10, 100)
    assert lift.absolute == 0.0 and lift.entries_needed is None
    assert lift.verdict.startswith("not significant yet: no difference")
