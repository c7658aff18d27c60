"""Small helpers for the spec tests: YAML text in, real loader and validator out."""

from __future__ import annotations

import textwrap

from omni_journey.spec.diagnostics import Diagnostic
from omni_journey.spec.loader import Document, parse_yaml
from omni_journey.spec.models import JourneySpec, SegmentSpec
from omni_journey.spec.validation import validate_document


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def load(text: str, path: str = "journeys/x.yaml") -> tuple[Document, list[Diagnostic]]:
    loaded = parse_yaml(dedent(text), path, "journey")
    assert loaded.document is not None, [d.format() for d in loaded.diagnostics]
    return loaded.document, loaded.diagnostics


def journey_problems(text: str) -> list[Diagnostic]:
    """Every YAML-level and model-level problem in a journey text."""
    doc, found = load(text)
    _, more = validate_document(doc, JourneySpec, "journey", already=found)
    return sorted(found + more)


def journey(text: str, path: str = "journeys/x.yaml") -> tuple[JourneySpec, Document]:
    doc, found = load(text, path)
    spec, more = validate_document(doc, JourneySpec, "journey", already=found)
    assert spec is not None and not found, [d.format() for d in found + more]
    return spec, doc


def segment(text: str, path: str = "segments/x.yaml") -> tuple[SegmentSpec, Document]:
    loaded = parse_yaml(dedent(text), path, "segment")
    assert loaded.document is not None
    spec, more = validate_document(loaded.document, SegmentSpec, "segment")
    assert spec is not None, [d.format() for d in more]
    return spec, loaded.document


def codes(found: list[Diagnostic]) -> list[tuple[int, int, str]]:
    return [(d.line, d.col, d.code) for d in found]
