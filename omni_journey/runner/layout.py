"""How many shards a journey runs as, and the cursors each layout reads.

``journey_cursors.shards`` records the layout in use. One shard (the default) keeps its
cursor in ``journey_cursors``; N shards keep one ``journey_shard_cursors`` row each,
read by the worker that holds that shard. A worker started with another count first
hands the journey over (:meth:`~omni_journey.runner.passes.JourneyRunner` does it, with
these reads): holding the journey and every shard of the old layout, it reads the
newest event's ``seq`` (``S``), finishes each old shard's events up to ``S``, and
writes the new layout's cursors at ``S``. Every customer's events up to ``S`` were then
read once, under the old layout, and those after ``S`` will be read once, under the
new: none is lost or read twice, whatever the two counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select

from omni_journey.store.core import EVENTS, JOURNEY_CURSORS, JOURNEY_SHARD_CURSORS

__all__ = ["Layout", "read_layout", "scheduled_marks", "stream_head"]


@dataclass(frozen=True)
class Layout:
    shards: int
    scheduled_at: datetime | None  # one shard: when its scheduled audience was served


def read_layout(connection: Connection, key: str) -> Layout | None:
    """The journey's layout; ``None`` before its first pass."""
    c = JOURNEY_CURSORS.c
    row = connection.execute(
        select(c.shards, c.last_scheduled_at).where(c.journey_key == key)
    ).one_or_none()
    return None if row is None else Layout(int(row.shards), row.last_scheduled_at)


def scheduled_marks(connection: Connection, key: str, layout: Layout) -> list[datetime | None]:
    """When each shard of ``layout`` last served the journey's scheduled audience."""
    if layout.shards == 1:
        return [layout.scheduled_at]
    c = JOURNEY_SHARD_CURSORS.c
    return list(
        connection.execute(
            select(c.last_scheduled_at).where(c.journey_key == key, c.shards == layout.shards)
        ).scalars()
    )


def stream_head(connection: Connection) -> int:
    """The ``seq`` of the newest event (0: none yet)."""
    return int(connection.execute(select(func.max(EVENTS.c.seq))).scalar_one_or_none() or 0)
