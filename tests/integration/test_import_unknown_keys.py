"""A key omni-journey does not read is reported with its line, never dropped silently:
``customers import`` / ``events import`` through the CLI (typer's CliRunner, a real
SQLite store), and ``import_file`` with the reader in a child process."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from omni_journey.cli import app
from omni_journey.ingest.intake import import_file
from omni_journey.settings import Settings
from omni_journey.store import open_store
from omni_journey.store.core import CONSENTS, CUSTOMERS, EVENTS

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
# what a new user wrote: "id" for customer_id, "consents", a top-level first_name
PROFILES: list[dict[str, object]] = [
    {"id": "c-1", "email": "ana@example.com", "consents": {"email": True}, "first_name": "Ana"},
    {"customer_id": "c-2", "email": "bo@example.com", "consent": {"email": True}},
    {"id": "c-3", "email": "cy@example.com", "consents": {"email": True}, "first_name": "Cy"},
]


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("OMNI_DATABASE_URL", "OMNI_PROJECT_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMNI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "400")
    return tmp_path / "home"


def _rows(home: Path, query):  # type: ignore[no-untyped-def]
    engine = open_store(f"sqlite:///{home / 'omni.db'}")
    try:
        with engine.connect() as connection:
            return connection.execute(query).all()
    finally:
        engine.dispose()


def test_unknown_profile_keys_are_warned_about_by_line_and_counted(
    home: Path, tmp_path: Path
) -> None:
    source = _write(tmp_path / "profiles.jsonl", PROFILES)
    result = CliRunner().invoke(app, ["customers", "import", str(source)])
    assert result.exit_code == 0, result.output
    assert "accepted 3, duplicates 0, rejected 0, with unknown keys 2" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning")]
    assert warnings == [
        'warning[unknown-field]: line 1: unknown keys "consents" (did you mean "consent"?), '
        '"first_name" (your own data goes under "attributes": "attributes": {"first_name": '
        '...}), "id" (did you mean "customer_id"?)',
        'warning[unknown-field]: line 3: unknown keys "consents" (did you mean "consent"?), '
        '"first_name" (your own data goes under "attributes": "attributes": {"first_name": '
        '...}), "id" (did you mean "customer_id"?)',
    ]
    assert "consents on 2, first_name on 2, id on 2" in result.stderr
    assert "docs/data-formats.md" in result.stderr
    # imported without those keys: as before, but no longer silently
    assert len(_rows(home, select(CUSTOMERS.c.id))) == 3


def test_strict_rejects_the_lines_with_unknown_keys(home: Path, tmp_path: Path) -> None:
    source = _write(tmp_path / "profiles.jsonl", PROFILES)
    result = CliRunner().invoke(app, ["customers", "import", "--strict", str(source)])
    assert result.exit_code == 0, result.output
    assert "accepted 1, duplicates 0, rejected 2" in result.stdout
    rejects = [
        json.loads(line)
        for path in (home / "rejects").iterdir()
        for line in path.read_text().splitlines()
    ]
    assert [(r["line"], r["reason"]) for r in rejects] == [
        (1, "unknown-field"),
        (3, "unknown-field"),
    ]
    assert '"id" (did you mean "customer_id"?)' in rejects[0]["detail"]
    assert "ana@example.com" not in rejects[0]["detail"]
    assert [row.id for row in _rows(home, select(CUSTOMERS.c.id))] == ["c-2"]
    assert len(_rows(home, select(CONSENTS))) == 1


def test_unknown_event_keys_are_warned_about_and_the_event_stored(
    home: Path, tmp_path: Path
) -> None:
    source = _write(
        tmp_path / "events.jsonl",
        [
            {"id": "e-1", "name": "product.viewed", "customer_id": "c-1",
             "at": "2026-05-01T10:00:00Z", "sku": "SERUM-30"},
            {"id": "e-2", "name": "product.viewed", "customer_id": "c-1",
             "at": "2026-05-01T10:00:00Z", "properties": {"sku": "SERUM-30"}},
            {"id": "e-3", "event": "product.viewed", "customer_id": "c-1",
             "at": "2026-05-01T10:00:00Z"},
        ],
    )  # fmt: skip
    result = CliRunner().invoke(app, ["events", "import", str(source)])
    assert result.exit_code == 0, result.output
    assert "accepted 2, duplicates 0, rejected 1, with unknown keys 2" in result.stdout
    assert (
        'line 1: unknown key "sku" (event data goes under "properties": '
        '"properties": {"sku": ...})' in result.stderr
    )
    assert 'line 3: unknown key "event" (did you mean "name"?)' in result.stderr
    assert sorted(row.event_id for row in _rows(home, select(EVENTS.c.event_id))) == [
        "e-1",
        "e-2",
    ]


def test_the_help_texts_point_at_the_data_formats() -> None:
    for command in (["customers", "import"], ["events", "import"], ["simulate"]):
        result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "400"})
        assert result.exit_code == 0
        assert "docs/data-formats.md" in result.stdout, command
        assert "contract".upper() not in result.stdout  # the team's notes: users never have them


@pytest.mark.parametrize("reader", ["inline", "process"])
def test_the_reader_process_reports_unknown_keys_as_the_inline_reader_does(
    tmp_path: Path, reader: str
) -> None:
    rows = [
        {"id": f"e-{i}", "name": "product.viewed", "customer_id": f"c-{i % 7}",
         "at": "2026-05-01T10:00:00Z", "properties": {}, **({"extra": i} if i % 3 == 0 else {})}
        for i in range(3000)
    ]  # fmt: skip
    source = _write(tmp_path / "events.jsonl", rows)
    settings = Settings(home=tmp_path / "home", import_reader=reader, batch_size=500)
    engine = open_store(settings.resolved_database_url)
    try:
        result = import_file(engine, source, "events", settings=settings, now=NOW)
        strict = import_file(engine, source, "events", settings=settings, now=NOW, strict=True)
    finally:
        engine.dispose()
    assert (result.accepted, result.rejected, result.unknown.lines) == (3000, 0, 1000)
    assert result.unknown.per_key == {"extra": 1000}
    assert [line for line, _ in result.unknown.samples] == [1, 4, 7, 10, 13, 16, 19, 22, 25, 28]
    # strict: the same lines rejected, the others already stored
    assert (strict.rejected, strict.duplicates, strict.unknown.lines) == (1000, 2000, 0)


def test_the_guide_shows_what_the_import_prints(home: Path, tmp_path: Path) -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "data-formats.md").read_text()
    block = guide.split("$ omni-journey customers import profiles.jsonl\n", 1)[1]
    shown = block.split("```", 1)[0].splitlines()
    source = _write(tmp_path / "profiles.jsonl", PROFILES[:1])
    result = CliRunner().invoke(app, ["customers", "import", str(source)])
    assert result.exit_code == 0, result.output
    printed = [*result.stderr.splitlines(), *result.stdout.splitlines()]
    assert shown == [line for line in printed if line]  # (a finished progress bar: blank)
