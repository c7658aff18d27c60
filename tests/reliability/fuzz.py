"""Hypothesis settings for the bad-input tests: short in CI, long on demand.

``OMNI_RELIABILITY_EXAMPLES`` sets how many inputs each fuzzing test tries (default 60,
the CI run; the long run is ``OMNI_RELIABILITY_EXAMPLES=2000 .venv/bin/python -m pytest
tests/reliability/test_bad_input*.py --hypothesis-show-statistics``, which prints how
many inputs each test tried). The CI run is derandomized, so it tries the same inputs
every time; a longer run explores with a fresh seed (``--hypothesis-seed`` repeats
one), and gets a per-test timeout that fits its examples.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

__all__ = ["CI_EXAMPLES", "FUZZ", "examples", "fuzz_timeout"]

CI_EXAMPLES = 60


def examples() -> int:
    """How many inputs each fuzzing test tries."""
    return max(1, int(os.environ.get("OMNI_RELIABILITY_EXAMPLES", str(CI_EXAMPLES))))


def fuzz_timeout(seconds_per_example: float) -> pytest.MarkDecorator:
    """A per-test timeout for a long run (the suite's ten minutes stay for CI)."""
    return pytest.mark.timeout(max(600, int(examples() * seconds_per_example) + 120))


FUZZ = settings(
    max_examples=examples(),
    deadline=None,
    derandomize=examples() <= CI_EXAMPLES,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.filter_too_much,
    ],
)
