"""docs/segments.md stays true: its YAML parses, and the built-in recipes match the code."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from omni_journey.cli import _register, app
from omni_journey.segments.triggers import behavioural_segments
from omni_journey.spec.project import parse_journey, parse_segment

DOC = Path(__file__).resolve().parents[3] / "docs" / "segments.md"
BLOCKS = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.S)


def test_every_yaml_block_is_a_valid_segment_or_journey() -> None:
    segments = journeys = 0
    for block in BLOCKS:
        if "steps:" in block:
            parse_journey(block)
            journeys += 1
        else:
            parse_segment(block)
            segments += 1
    assert segments >= 6 and journeys >= 6


def test_built_in_recipes_are_the_documented_ones() -> None:
    parsed = [parse_segment(block) for block in BLOCKS if "steps:" not in block]
    documented = {spec.key: spec for spec in parsed}
    built_in = behavioural_segments()
    for key, spec in built_in.items():
        if key == "back_in_stock_watchers":  # documented as "the same with ..."
            continue
        assert documented[key].match == spec.match, key


def test_every_documented_command_exists() -> None:
    _register()
    runner = CliRunner()
    for command in re.findall(
        r"^omni-journey ((?:segments|backtest) [a-z-]+)", DOC.read_text(), re.M
    ):
        result = runner.invoke(app, [*command.split(), "--help"])
        assert result.exit_code == 0, command
