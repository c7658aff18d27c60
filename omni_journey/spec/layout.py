"""Where a project keeps its files: the folder names, which files are read, and how
a path is shown in a diagnostic.

One place for the layout, so the reader, ``validate`` and ``deploy`` agree on what a
project is, and a path given on the command line finds the project it belongs to.
"""

from __future__ import annotations

import re
from pathlib import Path

from omni_journey.spec.conditions import KEY_PATTERN

__all__ = [
    "EVENTS_FILE",
    "JOURNEYS_DIR",
    "SEGMENTS_DIR",
    "TEMPLATES_DIR",
    "display",
    "message_keys",
    "root_of",
    "yaml_files",
]

JOURNEYS_DIR = "journeys"
SEGMENTS_DIR = "segments"
TEMPLATES_DIR = "templates"
EVENTS_FILE = "events.yaml"
_YAML_SUFFIXES = (".yaml", ".yml")


def message_keys(templates: Path) -> set[str]:
    """The messages a project has: folders under ``templates/`` named like a key
    (``_partials/`` and other helpers are not messages). Their content is checked by
    :func:`omni_journey.render.check_templates`."""
    if not templates.is_dir():
        return set()
    return {p.name for p in templates.iterdir() if p.is_dir() and re.fullmatch(KEY_PATTERN, p.name)}


def display(file: Path, base: Path) -> str:
    """``file`` as a diagnostic shows it: relative to ``base`` when under it."""
    try:
        return file.relative_to(base).as_posix()
    except ValueError:
        return file.as_posix()


def yaml_files(folder: Path, *, recursive: bool = False) -> list[Path]:
    """The YAML files in ``folder``, sorted (so diagnostics come in a stable order)."""
    if not folder.is_dir():
        return []
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.is_file() and p.suffix in _YAML_SUFFIXES)


def root_of(path: Path) -> Path:
    """The project a path belongs to: the folder holding its ``journeys/``,
    ``segments/`` or ``templates/`` (else the path's own folder)."""
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
