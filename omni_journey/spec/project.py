"""A project on disk: ``journeys/``, ``segments/``, ``templates/`` and ``events.yaml``.

Here journeys, segments and ``events.yaml`` are read and checked, and the message
folders under ``templates/`` are listed (what is inside them is the render layer's
to check: ``omni-journey validate`` runs both).

:func:`load_project` reads everything at once and returns the valid specs with every
problem found, sorted by file, line and column. :func:`validate_paths` checks just
the files under some paths (with the rest of their project as context), and
:func:`load_journey` / :meth:`Project.journey` give a valid :class:`JourneySpec` or
raise :class:`~omni_journey.errors.SpecError` carrying the diagnostics.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omni_journey.errors import SpecError
from omni_journey.spec.checks import (
    check_journey,
    check_journey_references,
    check_key,
    check_segment_cycles,
    check_segment_references,
    known_events,
)
from omni_journey.spec.conditions import EVENT_PATTERN, KEY_PATTERN
from omni_journey.spec.diagnostics import Diagnostic, did_you_mean, one_of
from omni_journey.spec.loader import Document, load_yaml, parse_yaml
from omni_journey.spec.models import JourneySpec, SegmentSpec
from omni_journey.spec.validation import validate_document

__all__ = [
    "EVENTS_FILE",
    "JOURNEYS_DIR",
    "SEGMENTS_DIR",
    "TEMPLATES_DIR",
    "Project",
    "Validation",
    "check_paths",
    "load_journey",
    "load_project",
    "message_keys",
    "parse_journey",
    "parse_segment",
    "validate_paths",
]

JOURNEYS_DIR = "journeys"
SEGMENTS_DIR = "segments"
TEMPLATES_DIR = "templates"
EVENTS_FILE = "events.yaml"
_YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Project:
    """Everything under a project root, loaded and checked.

    ``journeys`` and ``segments`` hold only the specs with no error (keyed by file
    stem, which equals their key); ``diagnostics`` every problem found, sorted.
    """

    root: Path
    journeys: dict[str, JourneySpec]
    segments: dict[str, SegmentSpec]
    messages: set[str]
    diagnostics: list[Diagnostic]
    custom_events: frozenset[str] = frozenset()
    files: tuple[str, ...] = ()

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def ok(self) -> bool:
        return not self.errors

    def require_valid(self) -> Project:
        """This project, or :class:`SpecError` with every error in it."""
        if self.errors:
            raise SpecError(list(self.errors))
        return self

    def journey(self, key: str) -> JourneySpec:
        """The valid journey ``key``, or :class:`SpecError` saying what is wrong with it."""
        if key in self.journeys:
            return self.journeys[key]
        mine = [
            d
            for d in self.errors
            if Path(d.path).stem == key and Path(d.path).parent.name == JOURNEYS_DIR
        ]
        if mine:
            raise SpecError(list(mine))
        suggestion = did_you_mean(key, self.journeys)
        raise SpecError(
            [
                Diagnostic(
                    path=f"{JOURNEYS_DIR}/{key}.yaml",
                    line=1,
                    col=1,
                    code="unknown-journey",
                    message=f'there is no journey "{key}"',
                    expected=one_of(sorted(self.journeys)) if self.journeys else None,
                    hint=f'did you mean "{suggestion}"?'
                    if suggestion
                    else f"create {JOURNEYS_DIR}/{key}.yaml",
                )
            ]
        )


@dataclass(frozen=True)
class Validation:
    """What :func:`check_paths` found: every diagnostic and how many files it read."""

    diagnostics: list[Diagnostic]
    files: int

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


# --- one file ---------------------------------------------------------------------


@dataclass
class _File:
    file: Path
    shown: str
    kind: str  # journey | segment | events
    doc: Document | None = None
    spec: JourneySpec | SegmentSpec | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)


def _validate(
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


def _events_file(record: _File) -> frozenset[str]:
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


# --- a whole project --------------------------------------------------------------


def message_keys(templates: Path) -> set[str]:
    """The messages a project has: folders under ``templates/`` named like a key
    (``_partials/`` and other helpers are not messages). Their content is checked by
    :func:`omni_journey.render.check_templates`."""
    if not templates.is_dir():
        return set()
    return {p.name for p in templates.iterdir() if p.is_dir() and re.fullmatch(KEY_PATTERN, p.name)}


def _display(file: Path, base: Path) -> str:
    try:
        return file.relative_to(base).as_posix()
    except ValueError:
        return file.as_posix()


def _yaml_files(folder: Path, *, recursive: bool = False) -> list[Path]:
    if not folder.is_dir():
        return []
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.is_file() and p.suffix in _YAML_SUFFIXES)


class _Loader:
    """Loads one project root (and any extra files) and runs every check."""

    def __init__(self, root: Path, base: Path, extra: Iterable[Path] = ()) -> None:
        self.root = root
        self.base = base
        self.records: list[_File] = []
        for file in _yaml_files(root / JOURNEYS_DIR):
            self._read(file, "journey")
        for file in _yaml_files(root / SEGMENTS_DIR):
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

    def _read(self, file: Path, kind: str) -> _File:
        shown = _display(file, self.base)
        loaded = load_yaml(file, shown, kind or "file")
        record = _File(file=file, shown=shown, kind=kind, doc=loaded.document)
        record.diagnostics += loaded.diagnostics
        if not kind:
            record.kind = _kind_by_content(loaded.document)
        if record.kind in ("journey", "segment") and loaded.document is not None:
            record.spec = _validate(loaded.document, record.kind, file.stem, record.diagnostics)
        self.records.append(record)
        return record

    def _cross_check(self) -> None:
        segment_keys = {
            r.file.stem for r in self.records if r.kind == "segment" and self._in_place(r)
        }
        journeys = [r for r in self.records if isinstance(r.spec, JourneySpec)]
        events = known_events(
            [r.spec for r in journeys if isinstance(r.spec, JourneySpec) and self._in_place(r)],
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
        by_key: dict[str, _File] = {}
        for record in self.records:
            if isinstance(record.spec, SegmentSpec) and record.doc is not None:
                record.diagnostics += check_segment_references(
                    record.spec, record.doc, segments=segment_keys, events=events
                )
                if self._in_place(record):
                    segments[record.file.stem] = (record.spec, record.doc)
                    by_key[record.file.stem] = record
        for diagnostic in check_segment_cycles(segments):
            owner = next(r for r in by_key.values() if r.shown == diagnostic.path)
            owner.diagnostics.append(diagnostic)

    def _in_place(self, record: _File) -> bool:
        """Is this a journey in journeys/ or a segment in segments/ of this project?"""
        folder = {"journey": JOURNEYS_DIR, "segment": SEGMENTS_DIR}.get(record.kind)
        return folder is not None and record.file.parent == self.root / folder

    def project(self) -> Project:
        def valid(record: _File) -> bool:
            return self._in_place(record) and not any(d.is_error for d in record.diagnostics)

        return Project(
            root=self.root,
            journeys={
                r.file.stem: r.spec
                for r in self.records
                if isinstance(r.spec, JourneySpec) and valid(r)
            },
            segments={
                r.file.stem: r.spec
                for r in self.records
                if isinstance(r.spec, SegmentSpec) and valid(r)
            },
            messages=set(self.messages),
            diagnostics=sorted(d for r in self.records for d in r.diagnostics),
            custom_events=self.custom_events,
            files=tuple(r.shown for r in self.records),
        )


def load_project(root: Path | str = ".", *, display_base: Path | str | None = None) -> Project:
    """Load and check every journey, segment, template folder and ``events.yaml``
    under ``root``. Paths in diagnostics are relative to ``display_base`` (default:
    ``root``)."""
    resolved = Path(root).resolve()
    base = Path(display_base).resolve() if display_base is not None else resolved
    return _Loader(resolved, base).project()


# --- some paths -------------------------------------------------------------------


def _root_of(path: Path) -> Path:
    if path.is_dir():
        if path.name in (JOURNEYS_DIR, SEGMENTS_DIR, TEMPLATES_DIR):
            return path.parent
        return path
    if path.parent.name in (JOURNEYS_DIR, SEGMENTS_DIR):
        return path.parent.parent
    for parent in path.parents:
        if parent.name == TEMPLATES_DIR:
            return parent.parent
    return path.parent


def check_paths(
    paths: Sequence[Path | str],
    *,
    root: Path | str | None = None,
    display_base: Path | str | None = None,
) -> Validation:
    """Check the files under ``paths`` (files or folders), each with its project as
    context: the project is ``root`` if given, else found from each path (the folder
    holding ``journeys/``, ``segments/`` or ``templates/``). Paths in diagnostics are
    relative to ``display_base`` (default: the current directory)."""
    base = Path(display_base or Path.cwd()).resolve()
    wanted = [Path(p).resolve() for p in paths]
    for path in wanted:
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {path}")
    groups: dict[Path, list[Path]] = {}
    for path in wanted:
        project_root = Path(root).resolve() if root is not None else _root_of(path)
        groups.setdefault(project_root, []).append(path)
    diagnostics: list[Diagnostic] = []
    files = 0
    for project_root, members in groups.items():
        # Files the project would not read itself: a draft outside journeys/, say.
        # (The project root means its own folders; message folders are render's.)
        templates = project_root / TEMPLATES_DIR
        extra = [
            f
            for m in members
            if m != project_root
            for f in ([m] if m.is_file() else _yaml_files(m, recursive=True))
            if templates not in f.parents
        ]
        loader = _Loader(project_root, base, extra)
        for record in loader.records:
            if any(record.file == m or m in record.file.parents for m in members):
                files += 1
                diagnostics += record.diagnostics
    return Validation(diagnostics=sorted(set(diagnostics)), files=files)


def validate_paths(
    paths: Sequence[Path | str], *, root: Path | str | None = None
) -> list[Diagnostic]:
    """Every problem in the files under ``paths``, sorted (see :func:`check_paths`)."""
    return check_paths(paths, root=root).diagnostics


def load_journey(path: Path | str, *, root: Path | str | None = None) -> JourneySpec:
    """The valid journey in the file ``path``, checked against its project; or
    :class:`SpecError` with every problem."""
    file = Path(path).resolve()
    project_root = Path(root).resolve() if root is not None else _root_of(file)
    loader = _Loader(project_root, Path.cwd().resolve(), [file])
    record = next(r for r in loader.records if r.file == file)
    errors = [d for d in record.diagnostics if d.is_error]
    if errors or not isinstance(record.spec, JourneySpec):
        raise SpecError([*sorted(errors)])
    return record.spec


def _parse(text: str, path: str, kind: str) -> JourneySpec | SegmentSpec:
    loaded = parse_yaml(text, path, kind)
    found = list(loaded.diagnostics)
    spec = None
    if loaded.document is not None:
        spec = _validate(loaded.document, kind, None, found)
    errors = sorted(d for d in found if d.is_error)
    if errors or spec is None:
        raise SpecError(list(errors))
    assert isinstance(spec, JourneySpec | SegmentSpec)
    return spec


def parse_journey(text: str, path: str = "<journey>") -> JourneySpec:
    """A journey from YAML text, checked on its own (no project: segments, messages
    and events are not looked up); or :class:`SpecError`."""
    spec = _parse(text, path, "journey")
    assert isinstance(spec, JourneySpec)
    return spec


def parse_segment(text: str, path: str = "<segment>") -> SegmentSpec:
    """A segment from YAML text, checked on its own; or :class:`SpecError`."""
    spec = _parse(text, path, "segment")
    assert isinstance(spec, SegmentSpec)
    return spec
