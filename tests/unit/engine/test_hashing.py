"""Deterministic buckets: holdout membership and split variants."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

from omni_journey.engine import holdout_bucket, split_bucket
from omni_journey.engine.hashing import choose_variant
from omni_journey.spec.models import SplitVariant

CUSTOMERS = [f"c-{i}" for i in range(20_000)]


def test_holdout_bucket_is_stable_and_in_unit_interval() -> None:
    first = [holdout_bucket("browse", c) for c in CUSTOMERS[:500]]
    assert first == [holdout_bucket("browse", c) for c in CUSTOMERS[:500]]
    assert all(0 <= b < 1 for b in first)


def test_holdout_bucket_is_the_same_in_another_process() -> None:
    """Not Python's salted ``hash()``: a fresh interpreter gives the same number."""
    code = "from omni_journey.engine import holdout_bucket; print(repr(holdout_bucket('j', 'c-7')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(out.stdout) == holdout_bucket("j", "c-7")


def test_holdout_share_is_close_to_the_configured_share() -> None:
    share = sum(holdout_bucket("browse", c) < 0.10 for c in CUSTOMERS) / len(CUSTOMERS)
    assert abs(share - 0.10) < 0.01


def test_holdouts_of_different_journeys_are_independent() -> None:
    a = {c for c in CUSTOMERS if holdout_bucket("a", c) < 0.5}
    b = {c for c in CUSTOMERS if holdout_bucket("b", c) < 0.5}
    both = len(a & b) / len(CUSTOMERS)
    assert abs(both - 0.25) < 0.02


def test_split_weights_are_statistically_close() -> None:
    variants = (
        SplitVariant(name="a", weight=50),
        SplitVariant(name="b", weight=30),
        SplitVariant(name="c", weight=20),
    )
    counts = Counter(choose_variant(variants, split_bucket("j", "ab", c)).name for c in CUSTOMERS)
    n = len(CUSTOMERS)
    for name, weight in (("a", 0.5), ("b", 0.3), ("c", 0.2)):
        # within 4 standard deviations of a binomial proportion
        sigma = (weight * (1 - weight) / n) ** 0.5
        assert abs(counts[name] / n - weight) < 4 * sigma


def test_split_is_per_step() -> None:
    one = [split_bucket("j", "first", c) < 0.5 for c in CUSTOMERS[:2000]]
    two = [split_bucket("j", "second", c) < 0.5 for c in CUSTOMERS[:2000]]
    assert one != two


def test_choose_variant_covers_the_edges() -> None:
    variants = (SplitVariant(name="a", weight=1), SplitVariant(name="b", weight=3))
    assert choose_variant(variants, 0.0).name == "a"
    assert choose_variant(variants, 0.2499).name == "a"
    assert choose_variant(variants, 0.25).name == "b"
    assert choose_variant(variants, 0.999999).name == "b"
