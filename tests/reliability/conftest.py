"""The reliability harness: short in CI, long on demand.

``OMNI_RELIABILITY_KILLS`` sets how many SIGKILLs a crash-safety run deals (default 16,
the CI run; the long run is ``OMNI_RELIABILITY_KILLS=200 .venv/bin/python -m pytest
tests/reliability``). ``OMNI_RELIABILITY_SEED`` picks other kill points. A long run
gets a longer per-test timeout than the suite's ten minutes.
"""

from __future__ import annotations

import os

import pytest

CI_KILLS = 16


def _kills() -> int:
    return int(os.environ.get("OMNI_RELIABILITY_KILLS", str(CI_KILLS)))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if _kills() > CI_KILLS:
        for item in items:
            if item.nodeid.startswith("tests/reliability/"):
                item.add_marker(pytest.mark.timeout(max(600, 30 * _kills())))


@pytest.fixture(scope="session")
def kills() -> int:
    return _kills()


@pytest.fixture(scope="session")
def kill_seed() -> int:
    return int(os.environ.get("OMNI_RELIABILITY_SEED", "20261207"))
