"""The Python API: a customer's data out, then erased, through ``omni_journey.api`` on
the real store (SQLite file and PostgreSQL); identify and track, then export and erase."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from omni_journey import api
from omni_journey.settings import Settings
from tests.integration.privacy.story import found_in_files, found_in_store


@pytest.fixture
def api_settings(store: Engine, tmp_path: Path) -> Iterator[Settings]:
    yield Settings(
        home=tmp_path / "api", database_url=store.url.render_as_string(hide_password=False)
    )
    for engine in api._engines.values():
        engine.dispose()
    api._engines.clear()


def test_export_then_erase_from_python(store: Engine, api_settings: Settings) -> None:
    api.identify("c-9", email="zoe.quill@example.com", consent={"email": True},
                 attributes={"first_name": "Zoebelle"}, settings=api_settings)  # fmt: skip
    api.track("product.viewed", "c-9", properties={"note": "Zoebelle"}, settings=api_settings)
    document = api.export_customer("zoe.quill@example.com", settings=api_settings)
    assert document is not None and document["profile"]["attributes"]["first_name"] == "Zoebelle"
    assert [e["name"] for e in document["events"]] == ["product.viewed"]
    assert document["consent"]["email"]["history"][0]["source"] == "profile"

    result = api.erase_customer("c-9", settings=api_settings)
    assert result.erased and result.counts["events"] == 1
    needles = ("zoe.quill@example.com", "Zoebelle")
    assert found_in_store(store, needles) == []
    assert not api_settings.home.exists() or found_in_files(api_settings.home, needles) == []
    assert api.export_customer("c-9", settings=api_settings) is None
    assert api.erase_customer("c-9", settings=api_settings).erased is False
