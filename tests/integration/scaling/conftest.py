"""One shop, imported once per session into a template database that every run copies."""

from __future__ import annotations

import pytest

from tests.integration.scaling.workers import Shop, make_shop


@pytest.fixture(scope="session")
def shop(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Shop:
    return make_shop(postgres_url, tmp_path_factory.mktemp("scaling-shop"))
