"""Every setting is documented in docs/operations.md, and settings behave as documented."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from omni_journey.errors import ConfigError
from omni_journey.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_documented() -> None:
    docs = (ROOT / "docs" / "operations.md").read_text()
    missing = [
        f"OMNI_{name.upper()}"
        for name in Settings.model_fields
        if f"`OMNI_{name.upper()}`" not in docs
    ]
    assert missing == []


def test_every_setting_has_a_description() -> None:
    assert [name for name, f in Settings.model_fields.items() if not f.description] == []


def test_embedded_default_is_sqlite_under_home(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(f"OMNI_{name.upper()}", raising=False)
    monkeypatch.setenv("OMNI_HOME", "/srv/omni")
    assert Settings().resolved_database_url == "sqlite:////srv/omni/omni.db"


def test_database_url_switches_to_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNI_DATABASE_URL", "postgresql+psycopg://u@db/omni")
    assert Settings().resolved_database_url == "postgresql+psycopg://u@db/omni"


def test_bad_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNI_EMAIL_PROVIDER", "sendgrid")
    with pytest.raises(ValidationError):
        Settings()
    with pytest.raises(ConfigError) as error:
        get_settings()
    assert error.value.variable == "OMNI_EMAIL_PROVIDER"
    assert "OMNI_EMAIL_PROVIDER" in str(error.value)
