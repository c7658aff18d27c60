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

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from omni_journey.errors import SpecError
from omni_journey.spec.diagnostics import Diagnostic, did_you_mean, one_of
from omni_journey.spec.layout import (
    EVENTS_FILE,
    JOURNEYS_DIR,
    SEGMENTS_DIR,
    TEMPLATES_DIR,
    message_keys,
    root_of,
    yaml_files,
)
from omni_journey.spec.loader import parse_yaml
from omni_journey.spec.models import JourneySpec, SegmentSpec
from omni_journey.spec.project_reader import ProjectReader, validate_spec

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


def _project(reader: ProjectReader) -> Project:
    """What a reader found, as callers see it: only the valid specs, every problem."""
    records = reader.records
    return Project(
        root=reader.root,
        journeys={
            r.file.stem: r.spec
            for r in records
            if isinstance(r.spec, JourneySpec) and reader.valid(r)
        },
        segments={
            r.file.stem: r.spec
            for r in records
            if isinstance(r.spec, SegmentSpec) and reader.valid(r)
        },
        messages=set(reader.messages),
        diagnostics=sorted(d for r in records for d in r.diagnostics),
        custom_events=reader.custom_events,
        files=tuple(r.shown for r in records),
    )


def load_project(root: Path | str = ".", *, display_base: Path | str | None = None) -> Project:
    """Load and check every journey, segment, template folder and ``events.yaml``
    under ``root``. Paths in diagnostics are relative to ``display_base`` (default:
    ``root``)."""
    resolved = Path(root).resolve()
    base = Path(display_base).resolve() if display_base is not None else resolved
    return _project(ProjectReader(resolved, base))


# --- some paths -------------------------------------------------------------------


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
        project_root = Path(root).resolve() if root is not None else root_of(path)
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
            for f in ([m] if m.is_file() else yaml_files(m, recursive=True))
            if templates not in f.parents
        ]
        loader = ProjectReader(project_root, base, extra)
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
    project_root = Path(root).resolve() if root is not None else root_of(file)
    loader = ProjectReader(project_root, Path.cwd().resolve(), [file])
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
        spec = validate_spec(loaded.document, kind, None, found)
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
