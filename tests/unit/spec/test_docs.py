"""docs/journeys.md covers the whole language, and its full examples are valid."""

from __future__ import annotations

import re
from pathlib import Path

from omni_journey.spec import parse_journey, parse_segment
from omni_journey.spec.conditions import CONDITION_KINDS, STANDARD_EVENTS
from omni_journey.spec.diagnostics import CODES, STORE_CODES
from omni_journey.spec.models import STEP_KINDS, JourneySpec

DOCS = (Path(__file__).resolve().parents[3] / "docs" / "journeys.md").read_text()


def test_every_code_has_a_section() -> None:
    missing = [code for code in {**CODES, **STORE_CODES} if f"### `{code}`" not in DOCS]
    assert missing == []


def test_every_step_type_has_a_section() -> None:
    assert [kind for kind in STEP_KINDS if f"### `{kind}`" not in DOCS] == []


def test_every_journey_key_and_condition_kind_is_documented() -> None:
    keys = [info.alias or name for name, info in JourneySpec.model_fields.items()]
    assert [k for k in keys if f"`{k}`" not in DOCS] == []
    assert [k for k in CONDITION_KINDS if f"`{k}`" not in DOCS] == []


def test_every_standard_event_is_listed() -> None:
    assert [e for e in sorted(STANDARD_EVENTS) if f"`{e}`" not in DOCS] == []


def test_the_full_examples_are_valid() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS, flags=re.S)
    journeys = [b for b in blocks if re.search(r"^key: ", b, re.M) and "steps:" in b]
    segments = [b for b in blocks if re.search(r"^key: ", b, re.M) and "match:" in b]
    assert journeys and segments
    for block in journeys:
        parse_journey(block)
    for block in segments:
        parse_segment(block)
