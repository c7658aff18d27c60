"""The committed JSON Schema: generated from the models, strict, and true to the examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from omni_journey.spec.loader import load_yaml
from omni_journey.spec.models import STEP_KINDS
from omni_journey.spec.schema import SCHEMA_FILES, render_schemas, stale_schemas, write_schemas

ROOT = Path(__file__).resolve().parents[3]
SCHEMAS = ROOT / "schemas"


def _schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / name).read_text())
    return loaded


def test_committed_schemas_match_the_models() -> None:
    assert stale_schemas(SCHEMAS) == [], "run: omni-journey schema --write"
    for name, text in render_schemas().items():
        assert (SCHEMAS / name).read_text() == text


def test_write_then_check(tmp_path: Path) -> None:
    assert stale_schemas(tmp_path) == sorted(SCHEMA_FILES)
    write_schemas(tmp_path)
    assert stale_schemas(tmp_path) == []
    (tmp_path / "journey.schema.json").write_text("{}")
    assert stale_schemas(tmp_path) == ["journey.schema.json"]


def test_every_object_in_the_schema_refuses_unknown_keys() -> None:
    for name in SCHEMA_FILES:
        schema = _schema(name)
        Draft202012Validator.check_schema(schema)
        for model, definition in [(name, schema), *schema.get("$defs", {}).items()]:
            if "properties" in definition:
                assert definition.get("additionalProperties") is False, model


def test_steps_are_a_union_of_every_step_kind() -> None:
    schema = _schema("journey.schema.json")
    kinds = {
        schema["$defs"][ref["$ref"].rsplit("/", 1)[1]]["properties"]["type"]["const"]
        for ref in schema["properties"]["steps"]["items"]["oneOf"]
    }
    assert kinds == set(STEP_KINDS)


def test_defaults_are_written_the_way_marketers_write_them() -> None:
    webhook = _schema("journey.schema.json")["$defs"]["WebhookStep"]
    assert webhook["properties"]["timeout"]["default"] == "10s"


@pytest.mark.parametrize(
    ("folder", "schema"), [("journeys", "journey.schema.json"), ("segments", "segment.schema.json")]
)
def test_every_example_validates_against_the_schema(folder: str, schema: str) -> None:
    validator = Draft202012Validator(_schema(schema))
    files = sorted((ROOT / folder).glob("*.yaml"))
    assert files
    for file in files:
        doc = load_yaml(file).document
        assert doc is not None
        errors = [e.message for e in validator.iter_errors(doc.data)]
        assert errors == [], file


def test_the_schema_catches_what_editors_should_flag() -> None:
    validator = Draft202012Validator(_schema("journey.schema.json"))
    good = {"key": "x", "trigger": {"event": "a.b"}, "steps": [{"id": "e", "type": "exit"}]}
    assert validator.is_valid(good)
    for bad in (
        {**good, "holdout": "10"},
        {**good, "steps": [{"id": "s", "type": "send", "message": "m", "chanel": "email"}]},
        {**good, "steps": [{"id": "w", "type": "delay", "for": "2 days"}]},
        {**good, "quiet_hours": {"start": "9:00", "end": "08:00"}},
        {**good, "trigger": {"evnt": "a.b"}},
    ):
        assert not validator.is_valid(bad), bad
