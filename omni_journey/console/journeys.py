"""Which journeys the console shows, and the spec each one's diagram is drawn from.

A journey's diagram comes from its YAML file (``journeys/<key>.yaml`` under
``OMNI_PROJECT_DIR``), checked as ``validate`` checks it. A journey whose file is gone
or invalid, but which the store ran, is drawn from its newest published version (the
spec the runner stored), and the page says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, select

from omni_journey.analytics.catalogue import known_journeys
from omni_journey.errors import SpecError
from omni_journey.settings import Settings
from omni_journey.spec.conditions import KEY_PATTERN
from omni_journey.spec.models import JourneySpec
from omni_journey.spec.project import JOURNEYS_DIR, load_journey
from omni_journey.store.core import JOURNEY_VERSIONS

__all__ = ["JourneySource", "is_journey_key", "journey_keys", "load_console_journey"]

_KEY: Final = re.compile(KEY_PATTERN)


def is_journey_key(text: str) -> bool:
    return len(text) <= 64 and _KEY.match(text) is not None


@dataclass(frozen=True)
class JourneySource:
    """A journey's spec and where it came from (``journeys/<key>.yaml``, or the
    newest published version when the file is missing or invalid)."""

    spec: JourneySpec
    source: str
    problem: str | None = None  # why the file was not used


def _file(settings: Settings, key: str) -> Path:
    return Path(settings.project_dir) / JOURNEYS_DIR / f"{key}.yaml"


def journey_keys(connection: Connection, settings: Settings) -> list[str]:
    """Every journey in ``journeys/`` and every journey the store knows, sorted."""
    folder = Path(settings.project_dir) / JOURNEYS_DIR
    files = {p.stem for p in folder.glob("*.yaml") if is_journey_key(p.stem)}
    return sorted(files | set(known_journeys(connection)))


def load_console_journey(
    connection: Connection, settings: Settings, key: str
) -> JourneySource | None:
    """The spec to draw ``key`` from, or None when neither a valid file nor a
    published version exists."""
    if not is_journey_key(key):
        return None
    problem = None
    file = _file(settings, key)
    if file.is_file():
        try:
            spec = load_journey(file, root=settings.project_dir)
            return JourneySource(spec, f"{JOURNEYS_DIR}/{key}.yaml")
        except SpecError as error:
            count = len(error.diagnostics)
            problem = f"{JOURNEYS_DIR}/{key}.yaml has {count} error(s): run omni-journey validate"
    row: Any = connection.execute(
        select(JOURNEY_VERSIONS.c.version, JOURNEY_VERSIONS.c.spec)
        .where(JOURNEY_VERSIONS.c.journey_key == key)
        .order_by(JOURNEY_VERSIONS.c.version.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    spec = JourneySpec.model_validate(row.spec)
    return JourneySource(spec, f"published version {row.version}", problem)
