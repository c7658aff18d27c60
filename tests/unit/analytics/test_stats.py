"""The interval statistics: published values, exact coverage, and the edges."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom, binomtest

from omni_journey.analytics.stats import (
    Interval,
    entries_needed,
    newcombe_interval,
    ratio_interval,
    wilson_interval,
    z_value,
)


def test_z_value_is_the_two_sided_normal_quantile() -> None:
    assert z_value(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert z_value(0.99) == pytest.approx(2.575829, abs=1e-6)
    with pytest.raises(ValueError):
        z_value(1.0)


@pytest.mark.parametrize(
    ("successes", "trials"), [(0, 1), (0, 10), (1, 10), (5, 10), (10, 10), (56, 70), (3, 1000)]
)
def test_wilson_matches_scipy(successes: int, trials: int) -> None:
    reference = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    interval = wilson_interval(successes, trials)
    assert interval is not None
    assert interval.low == pytest.approx(reference.low, abs=1e-12)
    assert interval.high == pytest.approx(reference.high, abs=1e-12)


def test_wilson_edges() -> None:
    assert wilson_interval(0, 0) is None
    none = wilson_interval(0, 25)
    every = wilson_interval(25, 25)
    assert none is not None and every is not None
    assert none.low == 0.0 and 0.0 < none.high < 0.2
    assert every.high == 1.0 and 0.8 < every.low < 1.0
    for bad in ((-1, 5), (6, 5), (0, -1)):
        with pytest.raises(ValueError):
            wilson_interval(*bad)


def _wilson_coverage(p: float, n: int) -> float:
    """Exact coverage: the probability, over every outcome k, that the interval holds p."""
    ks = np.arange(n + 1)
    mass = binom.pmf(ks, n, p)
    hits = [wilson_interval(int(k), n).contains(p) for k in ks]  # type: ignore[union-attr]
    return float(mass @ np.array(hits, dtype=float))


def test_wilson_covers_about_95_percent() -> None:
    grid = [(p, n) for p in (0.02, 0.05, 0.1, 0.2, 0.35, 0.5) for n in (20, 50, 200)]
    coverage = [_wilson_coverage(p, n) for p, n in grid]
    assert min(coverage) > 0.90  # Wilson dips a little for rare events; never far
    assert 0.94 <= float(np.mean(coverage)) <= 0.96


# Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10
NEWCOMBE_TABLE_II = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0)),
    ((10, 10, 0, 10), (0.6075, 1.0)),
]


@pytest.mark.parametrize(("counts", "expected"), NEWCOMBE_TABLE_II)
def test_newcombe_matches_the_published_table(
    counts: tuple[int, int, int, int], expected: tuple[float, float]
) -> None:
    interval = newcombe_interval(*counts)
    assert interval is not None
    assert (round(interval.low, 4), round(interval.high, 4)) == expected


def test_newcombe_is_antisymmetric_and_needs_both_arms() -> None:
    forward = newcombe_interval(12, 80, 4, 40)
    backward = newcombe_interval(4, 40, 12, 80)
    assert forward is not None and backward is not None
    assert forward.low == pytest.approx(-backward.high)
    assert forward.high == pytest.approx(-backward.low)
    assert newcombe_interval(3, 10, 0, 0) is None
    assert newcombe_interval(0, 0, 3, 10) is None


@pytest.mark.parametrize(
    ("p1", "n1", "p2", "n2"),
    [(0.1, 100, 0.1, 30), (0.2, 200, 0.15, 50), (0.05, 150, 0.02, 150), (0.5, 40, 0.3, 40)],
)
def test_newcombe_covers_about_95_percent(p1: float, n1: int, p2: float, n2: int) -> None:
    k1, k2 = np.arange(n1 + 1), np.arange(n2 + 1)
    m1, m2 = binom.pmf(k1, n1, p1), binom.pmf(k2, n2, p2)
    covered = 0.0
    for a in k1:
        for b in k2:
            interval = newcombe_interval(int(a), n1, int(b), n2)
            assert interval is not None
            if interval.contains(p1 - p2):
                covered += m1[a] * m2[b]
    assert 0.93 <= covered <= 0.98


def test_ratio_interval_brackets_the_ratio_and_needs_a_success_in_each_arm() -> None:
    interval = ratio_interval(56, 70, 48, 80)
    assert interval is not None
    assert interval.contains((56 / 70) / (48 / 80))
    assert interval.low > 1.0  # the same data's difference excludes 0 too
    assert ratio_interval(0, 10, 3, 10) is None
    assert ratio_interval(3, 10, 0, 10) is None


def test_ratio_interval_covers_about_95_percent() -> None:
    p1, n1, p2, n2 = 0.2, 200, 0.15, 100
    covered = mass = 0.0
    for a in range(n1 + 1):
        for b in range(n2 + 1):
            interval = ratio_interval(a, n1, b, n2)
            if interval is None:
                continue
            weight = float(binom.pmf(a, n1, p1) * binom.pmf(b, n2, p2))
            mass += weight
            covered += weight * interval.contains(p1 / p2)
    assert 0.93 <= covered / mass <= 0.97


def test_entries_needed_matches_the_textbook_and_grows_with_an_unequal_split() -> None:
    # 10% vs 15%, alpha 5% two-sided, power 80%: 686 per group (Fleiss, no correction)
    assert entries_needed(0.15, 0.10, 0.5) == 1372
    assert entries_needed(0.10, 0.15, 0.5) == 1372
    ten_percent_holdout = entries_needed(0.15, 0.10, 0.1)
    assert ten_percent_holdout is not None and ten_percent_holdout > 1372
    assert entries_needed(0.15, 0.15, 0.5) is None
    assert entries_needed(0.15, 0.10, 0.0) is None
    assert entries_needed(0.15, 0.10, 1.0) is None


def test_interval_contains_its_ends() -> None:
    assert Interval(0.1, 0.2).contains(0.1) and Interval(0.1, 0.2).contains(0.2)
    assert not Interval(0.1, 0.2).contains(0.21)
