"""Reading one project root: every journey, segment and ``events.yaml`` loaded, checked
on its own, then checked against the others.

Apart from :mod:`omni_journey.spec.project` (what callers get) because the reading
keeps per-file state (a document, its spec, its diagnostics) that ``validate`` needs
file by file and ``load_project`` folds into one :class:`Project`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from omni_journey.spec.checks import (
    check_journey,
    check_journey_references,
    check_key,
    check_segment_cycles,
    check_segment_references,
    known_events,
)
from omni_journey.spec.conditions import EVENT_PATTERN
from omni_journey.spec.diagnostics import Diagnostic
from omni_journey.spec.layout import (
    EVENTS_FILE,
    JOURNEYS_DIR,
    SEGMENTS_DIR,
    TEMPLATES_DIR,
    display,
    message_keys,
    yaml_files,
)
from omni_journey.spec.loader import Document, load_yaml
from omni_journey.spec.models import JourneySpec, SegmentSpec
from omni_journey.spec.validation import validate_document

__all__ = ["ProjectFile", "ProjectReader", "validate_spec"]


@dataclass
class ProjectFile:
    """One file read: its document, its spec if it has one, and its problems."""

    file: Path
    shown: str
    kind: str  # journey | segment | events
    doc: Document | None = None
    spec: JourneySpec | SegmentSpec | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)


def validate_spec(
    doc: Document, kind: str, stem: str | None, found: list[Diagnostic]
) -> JourneySpec | SegmentSpec | None:
    """The spec in ``doc`` with its own checks (``stem``: the file name to match the key);
    every problem is added to ``found``."""
    if kind == "journey":
        journey, more = validate_document(doc, JourneySpec, "journey", already=found)
        found += more
        if journey is not None:
            found += check_journey(journey, doc, stem)
        return journey
    segment, more = validate_document(doc, SegmentSpec, "segment", already=found)
    found += more
    if segment is not None:
        found += check_key(segment, doc, stem)
    return segment


def _kind_by_content(doc: Document | None) -> str:
    data = doc.data if doc is not None else None
    if isinstance(data, dict) and "match" in data and "steps" not in data:
        return "segment"
    return "journey"


def _events_file(record: ProjectFile) -> frozenset[str]:
    doc = record.doc
    if doc is None or doc.data is None:
        return frozenset()
    if not isinstance(doc.data, list):
        record.diagnostics.append(
            doc.at(
                (),
                "invalid-value",
                "events.yaml must be a list of event names",
                expected="- cart.abandoned (one custom event name a line)",
                hint="write each event name on its own line, starting with - ",
            )
        )
        return frozenset()
    names: set[str] = set()
    for i, name in enumerate(doc.data):
        if isinstance(name, str) and re.fullmatch(EVENT_PATTERN, name):
            names.add(name)
            continue
        record.diagnostics.append(
            doc.at(
                (i,),
                "invalid-value",
                "events.yaml has an invalid event name",
                expected="an event name like order.completed (letters, digits, . _ : -)",
                hint="write the name as your shop sends it, like wishlist.shared",
            )
        )
    return frozenset(names)


class ProjectReader:
    """Loads one project root (and any extra files) and runs every check."""

    def __init__(self, root: Path, base: Path, extra: Iterable[Path] = ()) -> None:
        self.root = root
        self.base = base
        self.records: list[ProjectFile] = []
        for file in yaml_files(root / JOURNEYS_DIR):
            self._read(file, "journey")
        for file in yaml_files(root / SEGMENTS_DIR):
            self._read(file, "segment")
        self.messages = message_keys(root / TEMPLATES_DIR)
        self.custom_events: frozenset[str] = frozenset()
        if (root / EVENTS_FILE).is_file():
            self.custom_events = _events_file(self._read(root / EVENTS_FILE, "events"))
        known = {r.file for r in self.records}
        for file in extra:
            if file not in known:
                self._read(file, "")
        self._cross_check()

    def _read(self, file: Path, kind: str) -> ProjectFile:
        shown = display(file, self.base)
        loaded = load_yaml(file, shown, kind or "file")
        record = ProjectFile(file=file, shown=shown, kind=kind, doc=loaded.document)
        record.diagnostics += loaded.diagnostics
        if not kind:
            record.kind = _kind_by_content(loaded.document)
        if record.kind in ("journey", "segment") and loaded.document is not None:
            record.spec = validate_spec(loaded.document, record.kind, file.stem, record.diagnostics)
        self.records.append(record)
        return record

    def _cross_check(self) -> None:
        segment_keys = {
            r.file.stem for r in self.records if r.kind == "segment" and self.in_place(r)
        }
        journeys = [r for r in self.records if isinstance(r.spec, JourneySpec)]
        events = known_events(
            [r.spec for r in journeys if isinstance(r.spec, JourneySpec) and self.in_place(r)],
            self.custom_events,
        )
        for record in journeys:
            assert isinstance(record.spec, JourneySpec) and record.doc is not None
            record.diagnostics += check_journey_references(
                record.spec,
                record.doc,
                segments=segment_keys,
                messages=self.messages,
                events=events,
            )
        segments: dict[str, tuple[SegmentSpec, Document]] = {}
        by_key: dict[str, ProjectFile] = {}
        for record in self.records:
            if isinstance(record.spec, SegmentSpec) and record.doc is not None:
                record.diagnostics += check_segment_references(
                    record.spec, record.doc, segments=segment_keys, events=events
                )
                if self.in_place(record):
                    segments[record.file.stem] = (record.spec, record.doc)
                    by_key[record.file.stem] = record
        for diagnostic in check_segment_cycles(segments):
            owner = next(r for r in by_key.values() if r.shown == diagnostic.path)
            owner.diagnostics.append(diagnostic)

    def in_place(self, record: ProjectFile) -> bool:
        """Is this a journey in journeys/ or a segment in segments/ of this project?"""
        folder = {"journey": JOURNEYS_DIR, "segment": SEGMENTS_DIR}.get(record.kind)
        return folder is not None and record.file.parent == self.root / folder

    def valid(self, record: ProjectFile) -> bool:
        """In place and without an error: a spec the project offers."""
        return self.in_place(record) and not any(d.is_error for d in record.diagnostics)
