"""docs/data-formats.md: every example is accepted as written, with no key ingestion
does not read, and its tables say what the code reads and what validate trusts."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from omni_journey.ingest.event_rows import check_events
from omni_journey.ingest.profile_rows import parse_profile
from omni_journey.ingest.readers import _EVENT_COLUMNS, _PROFILE_COLUMNS
from omni_journey.ingest.record_keys import (
    EVENT_KEYS,
    PROFILE_KEYS,
    describe,
    unknown_keys,
)
from omni_journey.render.variables import EVENT_PROPERTIES, event_table
from omni_journey.spec.conditions import STANDARD_EVENTS

ROOT = Path(__file__).resolve().parents[3]
DOCS = (ROOT / "docs" / "data-formats.md").read_text()
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
EXAMPLES: list[dict[str, Any]] = [
    orjson.loads(block) for block in re.findall(r"```json\n(.*?)```", DOCS, flags=re.S)
]
EVENTS = [e for e in EXAMPLES if "name" in e]
PROFILES = [p for p in EXAMPLES if "name" not in p]


def test_there_are_examples_of_each_kind() -> None:
    assert len(PROFILES) >= 1
    names = {event["name"] for event in EVENTS}
    # an event, a catalogue event, a feedback event and a reply
    assert {"product.viewed", "product.price_dropped", "message.opened"} <= names
    assert "message.replied" in names


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: str(p.get("customer_id")))
def test_every_profile_example_is_accepted_with_every_key_read(profile: dict[str, Any]) -> None:
    assert unknown_keys(profile, PROFILE_KEYS) == []
    parsed = parse_profile(profile, "DE", NOW)
    assert parsed.customer_id == profile["customer_id"]
    assert parsed.consent == profile["consent"]
    assert parsed.attributes == profile["attributes"]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: str(e["id"]))
def test_every_event_example_is_accepted_with_every_key_read(event: dict[str, Any]) -> None:
    assert unknown_keys(event, EVENT_KEYS) == []
    checked = check_events([event], "DE", sqlite=True)
    assert checked.rejected == [] and checked.event_ids == [event["id"]]
    assert orjson.loads(checked.properties[0]) == event["properties"]


def test_the_catalogue_example_is_a_catalogue_event() -> None:
    from omni_journey.segments.triggers import CATALOGUE_CUSTOMER_ID, CATALOGUE_EVENTS

    catalogue = [e for e in EVENTS if e["customer_id"] == CATALOGUE_CUSTOMER_ID]
    assert catalogue and all(e["name"] in CATALOGUE_EVENTS for e in catalogue)
    assert all("sku" in e["properties"] for e in catalogue)
    assert f"`{CATALOGUE_CUSTOMER_ID}`" in DOCS


def test_every_key_read_is_documented_and_no_other() -> None:
    tables = re.findall(r"^\| `([a-z_]+)`(?:, `([a-z_]+)`)? \|", DOCS, flags=re.M)
    documented = {name for row in tables for name in row if name}
    assert documented >= PROFILE_KEYS
    assert documented >= EVENT_KEYS
    # the CSV columns are the same keys
    assert set(_PROFILE_COLUMNS) <= PROFILE_KEYS
    assert set(_EVENT_COLUMNS) <= EVENT_KEYS


def test_the_event_table_is_the_one_validate_uses() -> None:
    assert event_table() in DOCS
    assert set(EVENT_PROPERTIES) <= STANDARD_EVENTS


def test_the_example_warning_is_what_an_import_prints_for_the_example_line() -> None:
    line = re.search(r"warning\[unknown-field\]: line 1: unknown keys (.*)$", DOCS, flags=re.M)
    assert line is not None
    record = {"id": "c-1", "email": "a@example.com", "consents": {}, "first_name": "Ana"}
    assert line.group(1) == describe(unknown_keys(record, PROFILE_KEYS), "customers")


def test_no_doc_refers_to_files_users_do_not_have() -> None:
    texts = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    texts += sorted((ROOT / "omni_journey").rglob("*.py"))
    # the team's own notes, which users never get (named so this file does not say them)
    private = "|".join(
        [*(rf"{name.upper()}(\.md|'s)" for name in ("contract", "design")), r"\.\./shared"]
    )
    found = [
        path.relative_to(ROOT).as_posix() for path in texts if re.search(private, path.read_text())
    ]
    assert found == []
