"""The layout keeps its promises: every package says what it is for, what it imports,
what it must never import and which tables it writes; no module grows past 400 lines;
``docs/architecture.md`` names every package and every table; the tables whose writer
has been made one module stay that way."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from omni_journey.store.tables import metadata

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "omni_journey"
PACKAGES = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
MAX_LINES = 400


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_has_a_readme_that_answers_the_four_questions(package: str) -> None:
    readme = PACKAGE / package / "README.md"
    assert readme.is_file(), f"omni_journey/{package}/README.md is missing"
    text = readme.read_text()
    for heading in ("**For:**", "**Imports:**", "**Writes:**"):
        assert heading in text, f"{package}/README.md does not say {heading}"
    assert "**Never import" in text, f"{package}/README.md does not say what it never imports"


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for folder in (PACKAGE, ROOT / "flows")
        for path in folder.rglob("*.py")
        if "migrations" not in path.parts
        and (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_architecture_page_names_every_package_and_table() -> None:
    page = (ROOT / "docs/architecture.md").read_text()
    for package in PACKAGES:
        assert f"`{package}`" in page, f"docs/architecture.md does not mention {package}"
    for table in metadata.tables:
        assert f"| `{table}`" in page or f"`{table}`," in page, f"no writer row for {table}"


# Writes as the code spells them: SQLAlchemy constructs on a table name, or raw SQL.
_WRITES = (
    r"insert_ignore\(\s*\w+,\s*(\w+)",
    r"(\w+)\.__table__\.insert\(\)",
    r"\b(\w+)\.insert\(\)",
    r"\bupdate\(\s*(\w+)\s*\)",
    r"\b(\w+)\.delete\(\)",
    r"INSERT INTO (\w+)",
    r"UPDATE (\w+) SET",
    r"DELETE FROM (\w+)",
    r"insert_ignore\(\s*\w+,\s*\"(\w+)\"",
    r"\binsert\(\s*(\w+)\s*\)",
    r"\bdelete\(\s*(\w+)\s*\)",
    r"(\w+)\.update\(\)",
)
# What each table is called in the code: its name, its SQLModel class, its Table object.
_ALIASES = {
    "events": {"events", "Event", "EVENTS", "_EVENTS", "_events"},
    "journey_log": {"journey_log", "JourneyLog", "JOURNEY_LOG"},
    "journey_cursors": {"journey_cursors", "JourneyCursor", "JOURNEY_CURSORS"},
    "suppressions": {"suppressions", "Suppression", "SUPPRESSIONS", "_SUPPRESSIONS"},
    "messages": {"messages", "Message", "MESSAGES", "_MESSAGES", "_messages"},
    "enrollments": {"enrollments", "Enrollment", "ENROLLMENTS", "_ENROLLMENTS", "_enrollments"},
    "consents": {"consents", "Consent", "CONSENTS", "_CONSENTS", "_consents"},
    "customers": {"customers", "Customer", "CUSTOMERS", "_CUSTOMERS", "_customers"},
    "identities": {"identities", "Identity", "IDENTITIES", "_IDENTITIES", "_identities"},
}
# The module (or, for the customer record, the package) that alone writes each table.
# A merge re-points every row naming the loser at the survivor
# (identity.profiles.move_history, over a list of tables): that one is the exception.
ONE_WRITER = {
    "events": "omni_journey/store/events.py",
    "journey_log": "omni_journey/runner/writes.py",
    "journey_cursors": "omni_journey/runner/writes.py",
    "suppressions": "omni_journey/reach/suppressions.py",
    "messages": "omni_journey/delivery/outbox.py",
    "enrollments": "omni_journey/runner/writes.py",
    "consents": "omni_journey/identity/",
    "customers": "omni_journey/identity/",
    "identities": "omni_journey/identity/",
}


def _writers(table: str) -> set[str]:
    writers = set()
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        text = path.read_text()
        for pattern in _WRITES:
            if any(name in _ALIASES[table] for name in re.findall(pattern, text)):
                writers.add(str(path.relative_to(ROOT)))
    return writers


@pytest.mark.parametrize("table", sorted(ONE_WRITER))
def test_a_table_has_one_writer(table: str) -> None:
    owner = ONE_WRITER[table]
    writers = _writers(table)
    assert writers, f"no writer of {table} found: the scan no longer sees it"
    assert {w for w in writers if not w.startswith(owner)} == set()
