"""The reliability harness: short in CI, long on demand.

``OMNI_RELIABILITY_KILLS`` sets how many SIGKILLs a crash-safety run deals (default 16,
the CI run; the long run is ``OMNI_RELIABILITY_KILLS=200 .venv/bin/python -m pytest
tests/reliability``). ``OMNI_RELIABILITY_SEED`` picks other kill points.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def kills() -> int:
    return int(os.environ.get("OMNI_RELIABILITY_KILLS", "16"))


@pytest.fixture(scope="session")
def kill_seed() -> int:
    return int(os.environ.get("OMNI_RELIABILITY_SEED", "20261207"))
