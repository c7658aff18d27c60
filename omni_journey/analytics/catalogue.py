"""Which journeys the store knows, their display names and their steps in order.

Read from the published versions (``journey_versions``), newest first, so a report
needs no project folder and still shows steps that only older versions had.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from omni_journey.store.core import JOURNEY_LOG, JOURNEY_VERSIONS

__all__ = ["JourneyInfo", "journey_info", "known_journeys"]


@dataclass(frozen=True)
class JourneyInfo:
    """A journey as the report shows it: key, name, steps (id, type) in order, holdout."""

    key: str
    name: str | None
    steps: tuple[tuple[str, str], ...]
    holdout: float | None
    version: int | None


def known_journeys(connection: Connection) -> list[str]:
    """Every journey key that was published or has a log row, sorted."""
    published = set(connection.execute(select(JOURNEY_VERSIONS.c.journey_key).distinct()).scalars())
    logged = set(connection.execute(select(JOURNEY_LOG.c.journey_key).distinct()).scalars())
    return sorted(published | logged)


def _share(value: Any) -> float | None:
    """A stored holdout (``"10%"`` or 0.1) as a share in [0, 1]."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        return float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        return None


def journey_info(connection: Connection, journey_key: str) -> JourneyInfo:
    """The newest version's name, holdout and step order, then steps only older
    versions had (in their order)."""
    rows = connection.execute(
        select(JOURNEY_VERSIONS.c.version, JOURNEY_VERSIONS.c.spec)
        .where(JOURNEY_VERSIONS.c.journey_key == journey_key)
        .order_by(JOURNEY_VERSIONS.c.version.desc())
    ).all()
    steps: dict[str, str] = {}
    for row in rows:
        spec: Mapping[str, Any] = row.spec or {}
        for step in spec.get("steps") or ():
            if isinstance(step, Mapping) and "id" in step:
                steps.setdefault(str(step["id"]), str(step.get("type", "?")))
    if not rows:
        return JourneyInfo(journey_key, None, tuple(steps.items()), None, None)
    newest: Mapping[str, Any] = rows[0].spec or {}
    name = newest.get("name")
    return JourneyInfo(
        key=journey_key,
        name=str(name) if name else None,
        steps=tuple(steps.items()),
        holdout=_share(newest.get("holdout")),
        version=int(rows[0].version),
    )
