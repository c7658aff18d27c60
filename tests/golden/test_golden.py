"""Golden files: for every diagnostic code, a small project under ``tests/golden/<code>/``
with that one kind of mistake, and ``expected.txt``: exactly what a marketer reads.

Regenerate after a deliberate change of wording with
``UPDATE_GOLDEN=1 .venv/bin/pytest tests/golden`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from omni_journey.errors import SpecError
from omni_journey.spec.diagnostics import CODES, Diagnostic, format_diagnostics
from omni_journey.spec.project import load_project

HERE = Path(__file__).resolve().parent
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def _diagnostics(project_dir: Path) -> list[Diagnostic]:
    project = load_project(project_dir)
    found = list(project.diagnostics)
    lookup = project_dir / "lookup.txt"
    if lookup.is_file():
        with pytest.raises(SpecError) as raised:
            project.journey(lookup.read_text().strip())
        found += [d for d in raised.value.diagnostics if isinstance(d, Diagnostic)]
    return sorted(found)


def test_every_code_has_a_golden_project() -> None:
    projects = {p.name for p in HERE.iterdir() if p.is_dir() and not p.name.startswith("_")}
    assert projects == set(CODES)


@pytest.mark.parametrize("code", sorted(CODES))
def test_golden(code: str) -> None:
    project_dir = HERE / code
    found = _diagnostics(project_dir)
    assert found, f"{code}: no diagnostic at all"
    assert {d.code for d in found} == {code}, format_diagnostics(found)
    assert all(d.hint and d.line >= 1 and d.col >= 1 for d in found)
    text = format_diagnostics(found) + "\n"
    expected = project_dir / "expected.txt"
    if UPDATE:
        expected.write_text(text, encoding="utf-8")
    assert expected.is_file(), f"run UPDATE_GOLDEN=1 pytest {__file__} to create it"
    assert text == expected.read_text(encoding="utf-8")
