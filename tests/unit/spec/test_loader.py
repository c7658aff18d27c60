"""The YAML loader: positions, YAML 1.1 traps, duplicate keys, syntax errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from omni_journey.spec.loader import Span, load_yaml, parse_yaml
from tests.unit.spec.helpers import dedent


def _parse(text: str) -> tuple[object, list[tuple[int, int, str]], list[str]]:
    loaded = parse_yaml(dedent(text), "journeys/x.yaml", "journey")
    data = loaded.document.data if loaded.document else None
    return (
        data,
        [(d.line, d.col, d.code) for d in loaded.diagnostics],
        [d.format() for d in loaded.diagnostics],
    )


def test_keeps_the_position_of_every_key_and_value() -> None:
    loaded = parse_yaml(
        dedent(
            """
            key: x
            steps:
              - id: wait
                type: delay
              - {id: nudge, channel: [push, email]}
            """
        ),
        "journeys/x.yaml",
    )
    doc = loaded.document
    assert doc is not None and loaded.diagnostics == []
    assert doc.data == {
        "key": "x",
        "steps": [
            {"id": "wait", "type": "delay"},
            {"id": "nudge", "channel": ["push", "email"]},
        ],
    }
    assert doc.key_spans[("steps", 0, "type")] == Span(4, 5, 4, 9)
    assert doc.value_spans[("steps", 0, "type")] == Span(4, 11, 4, 16)
    assert doc.value_spans[("steps", 1, "channel", 1)] == Span(5, 33, 5, 38)
    assert doc.span(("steps", 1, "missing")) == doc.value_spans[("steps", 1)]


def test_plain_types_come_out_as_plain_python() -> None:
    data, found, _ = _parse(
        """
        a: 3
        b: 2.5
        c: true
        d: null
        e: 0x1F
        f: 2026-05-01
        g: |
          two
          lines
        """
    )
    assert found == []
    assert data == {
        "a": 3,
        "b": 2.5,
        "c": True,
        "d": None,
        "e": 31,
        "f": "2026-05-01",
        "g": "two\nlines\n",
    }
    assert isinstance(data, dict)
    assert type(data["a"]) is int and type(data["b"]) is float and type(data["c"]) is bool


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("yes", 'write true if you mean true, or "yes" if you mean the word'),
        ("No", 'write false if you mean false, or "No" if you mean the word'),
        ("ON", 'write true if you mean true, or "ON" if you mean the word'),
        ("off", 'write false if you mean false, or "off" if you mean the word'),
        ("y", 'write true if you mean true, or "y" if you mean the word'),
        ("N", 'write false if you mean false, or "N" if you mean the word'),
        ("9:30", 'write "09:30"'),
        ("21:05", 'write "21:05"'),
        ("1:02:03", 'write "1:02:03"'),
        ("0123", 'write "0123" if it is a code, or 123 if it is a number'),
    ],
)
def test_refuses_yaml_1_1_traps(value: str, hint: str) -> None:
    loaded = parse_yaml(f"key: x\nsetting: {value}\n", "journeys/x.yaml")
    [problem] = loaded.diagnostics
    assert (problem.line, problem.col, problem.code) == (2, 10, "yaml-1.1-trap")
    assert problem.length == len(value)
    assert problem.hint == hint
    # the data still reads the YAML 1.2 way, so later checks can go on
    assert loaded.document is not None and isinstance(loaded.document.data["setting"], str | int)


@pytest.mark.parametrize(
    "value",
    ['"yes"', "'no'", "true", "False", '"09:30"', "!!str 9:30", "12", "0", "0.5", "|\n  on"],
)
def test_quoted_or_unambiguous_values_are_fine(value: str) -> None:
    assert parse_yaml(f"key: x\nsetting: {value}\n", "x.yaml").diagnostics == []


def test_traps_in_keys_and_lists_are_found_too() -> None:
    _, found, _ = _parse(
        """
        where:
          on: 3
        days: [mon, no]
        """
    )
    assert found == [(2, 3, "yaml-1.1-trap"), (3, 13, "yaml-1.1-trap")]


def test_duplicate_keys_are_located_at_the_second_and_keep_the_first() -> None:
    data, found, text = _parse(
        """
        key: x
        steps:
          - id: remind
            channel: email
            channel: sms
        """
    )
    assert found == [(5, 5, "duplicate-key")]
    assert 'step "remind" sets "channel" twice (first on line 4)' in text[0]
    assert isinstance(data, dict) and data["steps"][0]["channel"] == "email"


def test_every_duplicate_is_reported_at_once() -> None:
    _, found, _ = _parse("a: 1\nb: 2\na: 3\nb: 4\n")
    assert found == [(3, 1, "duplicate-key"), (4, 1, "duplicate-key")]


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("key: x\nsteps:\n  - id: a\n   type: b\n", (4, 4), "indented differently"),
        ("key: x\nname: a: b\n", (2, 8), 'an unquoted value contains ": "'),
        ('key: "x\nname: a\n', (1, 6), "a quoted value is never closed"),
        ("key: x\n---\nkey: y\n", (2, 1), "a second document (---) in the file"),
        ("key: x\n\tname: y\n", (2, 1), "a tab character"),
        ("key: [a, b\nname: y\n", (2, 5), "a list in [brackets] is not closed"),
        ("key: *nowhere\n", (1, 6), "an alias (*name) with no anchor"),
    ],
)
def test_syntax_errors_are_located(text: str, where: tuple[int, int], message: str) -> None:
    loaded = parse_yaml(text, "journeys/x.yaml")
    [problem] = loaded.diagnostics
    assert loaded.document is None
    assert (problem.line, problem.col, problem.code) == (*where, "yaml-syntax")
    assert message in problem.message
    assert problem.hint


def test_merge_keys_work_and_point_at_the_anchor() -> None:
    loaded = parse_yaml(
        "base: &b\n  type: send\n  channel: email\nstep:\n  <<: *b\n  channel: sms\n", "x.yaml"
    )
    doc = loaded.document
    assert doc is not None and loaded.diagnostics == []
    assert doc.data["step"] == {"channel": "sms", "type": "send"}
    assert doc.value_spans[("step", "type")].line == 2


def test_recursive_aliases_and_alias_bombs_are_refused() -> None:
    assert parse_yaml("a: &a [*a]\n", "x.yaml").diagnostics[0].code == "yaml-syntax"
    bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 8):
        bomb.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]")
    [problem] = parse_yaml("\n".join(bomb) + "\n", "x.yaml").diagnostics
    assert problem.code == "yaml-syntax" and "too many values" in problem.message


def test_custom_tags_are_refused() -> None:
    [problem] = parse_yaml("key: !secret abc\n", "x.yaml").diagnostics
    assert (problem.line, problem.col, problem.code) == (1, 6, "yaml-syntax")


def test_an_empty_file_is_a_document_without_data() -> None:
    loaded = parse_yaml("# nothing yet\n", "x.yaml")
    assert loaded.document is not None and loaded.document.data is None
    assert loaded.diagnostics == []


def test_load_yaml_reads_utf8_with_a_bom_and_refuses_other_bytes(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_bytes("\ufeffname: Café\n".encode())
    loaded = load_yaml(good, "journeys/good.yaml")
    assert loaded.document is not None and loaded.document.data == {"name": "Café"}
    assert loaded.document.path == "journeys/good.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"name: caf\xe9\n")
    [problem] = load_yaml(bad).diagnostics
    assert problem.code == "yaml-syntax" and "not UTF-8" in problem.message
    assert problem.path == bad.as_posix()
