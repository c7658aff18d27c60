"""Artifacts the flows publish: per-step tables, markdown summaries, progress.

Counts only, never a customer id, address or token: artifacts are visible to everyone
who can open the Prefect UI.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from sqlalchemy import Engine, and_, func, select

from flows._common import artifact_key
from omni_journey.spec.models import JourneySpec
from omni_journey.store.core import ENROLLMENTS, JOURNEY_LOG

__all__ = [
    "JourneyPass",
    "Progress",
    "journey_step_rows",
    "last_log_id",
    "markdown_table",
    "publish_summary",
    "publish_table",
    "summarize",
]

CHANNELS: tuple[str, ...] = ("email", "sms", "push", "whatsapp")
JOURNEY_ROW = "(journey)"


@dataclass
class JourneyPass:
    """What one task did to one journey: the runner's counters and the per-step table."""

    journey: str
    counts: dict[str, int]
    steps: list[dict[str, Any]] = field(default_factory=list)


def last_log_id(engine: Engine) -> int:
    """The newest ``journey_log`` row id: a pass's rows are the ones after it."""
    with engine.connect() as connection:
        found: Any = connection.execute(select(func.max(JOURNEY_LOG.c.id))).scalar_one_or_none()
    return int(found or 0)


def journey_step_rows(
    engine: Engine, spec: JourneySpec, *, after_log_id: int
) -> list[dict[str, Any]]:
    """One row per step (in the journey's order) plus a ``(journey)`` row: what this
    pass did (``journey_log`` rows after ``after_log_id``) and who waits where now.

    Columns: ``entered`` (reached the step), ``waiting`` (active enrollments on it),
    ``sent_<channel>``, ``skipped`` and ``skipped_by_reason``, ``deferred`` (held by
    quiet hours or a cap this pass), ``converted`` (last step before the conversion),
    ``exited``. The ``(journey)`` row counts entries into and exits from the journey;
    its ``waiting`` are customers past the last step whose goal window is still open.
    """
    log = JOURNEY_LOG.c
    with engine.connect() as connection:
        facts: Any = connection.execute(
            select(log.step_id, log.kind, log.reason, func.count())
            .where(and_(log.journey_key == spec.key, log.id > after_log_id))
            .group_by(log.step_id, log.kind, log.reason)
        ).all()
        waiting: Any = connection.execute(
            select(ENROLLMENTS.c.step_id, func.count())
            .where(and_(ENROLLMENTS.c.journey_key == spec.key, ENROLLMENTS.c.state == "active"))
            .group_by(ENROLLMENTS.c.step_id)
        ).all()
    by_step: dict[str, Counter[str]] = defaultdict(Counter)
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    for step_id, kind, reason, count in facts:
        step = step_id or JOURNEY_ROW
        if kind == "sent":
            by_step[step][f"sent_{reason}"] += count
        elif kind == "skipped":
            by_step[step]["skipped"] += count
            reasons[step][reason or "unknown"] += count
        elif kind == "step":
            by_step[step]["entered"] += count
        elif kind == "entered":
            by_step[JOURNEY_ROW]["entered"] += count
        else:  # exited, converted, completed, deferred, ...
            by_step[step][kind] += count
    for step_id, count in waiting:
        by_step[step_id or JOURNEY_ROW]["waiting"] += count
    channels = list(CHANNELS) + sorted(
        {k[5:] for c in by_step.values() for k in c if k.startswith("sent_")} - set(CHANNELS)
    )
    order = [(JOURNEY_ROW, "journey")] + [(step.id, step.type) for step in spec.steps]
    order += [(s, "?") for s in sorted(set(by_step) - {s for s, _ in order})]  # old versions
    rows: list[dict[str, Any]] = []
    for step, kind in order:
        counts = by_step.get(step, Counter())
        row: dict[str, Any] = {
            "step": step,
            "type": kind,
            "entered": counts["entered"],
            "waiting": counts["waiting"],
        }
        row.update({f"sent_{c}": counts[f"sent_{c}"] for c in channels})
        row["skipped"] = counts["skipped"]
        row["skipped_by_reason"] = ", ".join(
            f"{r} {n}" for r, n in sorted(reasons[step].items(), key=lambda i: (-i[1], i[0]))
        )
        row["deferred"] = counts["deferred"]
        row["converted"] = counts["converted"]
        row["exited"] = counts["exited"] + counts["completed"]
        rows.append(row)
    return rows


def summarize(counts: Mapping[str, int]) -> str:
    """``entered 3, queued 2 (email 2), skipped 1 (no_consent 1), ...`` for logs."""
    parts: list[str] = []
    for total, prefix in (("entered", None), ("queued", "queued:"), ("skipped", "skipped:")):
        value = counts.get(total, 0)
        detail = ""
        if prefix:
            split = {k[len(prefix) :]: v for k, v in counts.items() if k.startswith(prefix)}
            if split:
                detail = " (" + ", ".join(f"{k} {v}" for k, v in sorted(split.items())) + ")"
        parts.append(f"{total} {value}{detail}")
    for name in ("deferred", "converted", "exited", "completed", "webhooks"):
        if counts.get(name):
            parts.append(f"{name} {counts[name]}")
    return ", ".join(parts)


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "_nothing to show_"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def publish_table(
    rows: Sequence[Mapping[str, Any]], *, key: Iterable[str], description: str
) -> None:
    create_table_artifact(
        table=[dict(row) for row in rows], key=artifact_key(*key), description=description
    )


def publish_summary(markdown: str, *, key: Iterable[str], description: str) -> None:
    create_markdown_artifact(markdown=markdown, key=artifact_key(*key), description=description)


PROGRESS_AFTER_SECONDS = 5.0


class Progress:
    """A progress artifact for long runs: created once the run has taken ``after``
    seconds (default :data:`PROGRESS_AFTER_SECONDS`; a pass that ends sooner makes no
    API call for it), then updated only when it moved by ``step`` percent or more."""

    def __init__(self, description: str, *, step: float = 5.0, after: float | None = None) -> None:
        self.description = description
        self.step = step
        self.shown = 0.0
        wait = PROGRESS_AFTER_SECONDS if after is None else after
        self.deadline = time.monotonic() + wait
        self.id: UUID | None = None

    def update(self, done: float, total: float) -> None:
        percent = 100.0 if total <= 0 else min(100.0, 100.0 * done / total)
        if self.id is None:
            if time.monotonic() < self.deadline:
                return
            created: Any = create_progress_artifact(progress=percent, description=self.description)
            self.id = created
            self.shown = percent
            return
        if percent - self.shown >= self.step or (percent >= 100.0 > self.shown):
            update_progress_artifact(artifact_id=self.id, progress=percent)
            self.shown = percent
