"""A journey's funnel from the journey log: who reached each step and what happened there.

Four grouped queries per journey, whatever its size (never a loop over customers):

* the log's ``step``, ``sent``, ``skipped`` and ``converted`` rows by step;
* ``entered`` rows by holdout flag, and refused entries (skips at ``(entry)``);
* ``exited`` rows, each placed at the enrollment's last ``step`` row before it (an
  exit before the first step, such as the holdout's end or a purchase right after the
  trigger, counts on the journey only);
* active enrollments by step: who waits where *now* (not limited to the window).

Counts in the window ``[since, until)`` go by the log row's ``at``. ``sent`` means a
message was queued in the outbox (whether it was delivered is in the delivery rates).
A conversion counts at the last step that queued a message before it (last touch);
conversions with no message before them (the holdout, or a purchase before the first
send) count on the journey, not on a step.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, distinct, func, select

from omni_journey.analytics.catalogue import journey_info
from omni_journey.analytics.periods import within
from omni_journey.store.core import ENROLLMENTS, JOURNEY_LOG

__all__ = ["ENTRY_STEP", "Funnel", "StepFunnel", "journey_funnel"]

ENTRY_STEP = "(entry)"  # where the engine logs refused entries


@dataclass(frozen=True)
class StepFunnel:
    """One step: ``entered`` counts enrollments that reached it (once each, even when a
    loop brings them back), the rest count log rows."""

    step_id: str
    type: str
    entered: int = 0
    waiting: int = 0
    sent: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    converted: int = 0
    exited: dict[str, int] = field(default_factory=dict)

    @property
    def sent_total(self) -> int:
        return sum(self.sent.values())

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    @property
    def exited_total(self) -> int:
        return sum(self.exited.values())


@dataclass(frozen=True)
class Funnel:
    """A journey's funnel in ``[since, until)``; ``steps`` in the journey's order."""

    journey_key: str
    name: str | None
    since: datetime | None
    until: datetime | None
    entered: int
    holdout: int
    refused: dict[str, int]
    waiting_holdout: int
    converted: int
    converted_holdout: int
    converted_untouched: int
    exited: dict[str, int]
    steps: list[StepFunnel]

    @property
    def treated(self) -> int:
        return self.entered - self.holdout

    @property
    def channels(self) -> list[str]:
        return sorted({c for step in self.steps for c in step.sent})

    def rows(self) -> list[dict[str, Any]]:
        """The funnel as a table (plain dicts): one row per step, then the journey."""
        channels = self.channels
        rows: list[dict[str, Any]] = []
        for step in self.steps:
            row: dict[str, Any] = {
                "step": step.step_id,
                "type": step.type,
                "entered": step.entered,
                "waiting": step.waiting,
            }
            row.update({f"sent_{c}": step.sent.get(c, 0) for c in channels})
            row["skipped"] = step.skipped_total
            row["skipped_by_reason"] = _reasons(step.skipped)
            row["converted"] = step.converted
            row["exited"] = step.exited_total
            row["exited_by_reason"] = _reasons(step.exited)
            rows.append(row)
        return rows


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{r} {n}" for r, n in sorted(counts.items(), key=lambda i: (-i[1], i[0])))


def journey_funnel(
    connection: Connection,
    journey_key: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Funnel:
    """The funnel of ``journey_key`` over ``[since, until)`` (open ends: all history)."""
    log = JOURNEY_LOG.c
    window = [log.journey_key == journey_key, *within(log.at, since, until)]
    facts: Any = connection.execute(
        select(
            log.step_id,
            log.kind,
            log.reason,
            log.holdout,
            func.count(),
            func.count(distinct(log.enrollment_id)),
        )
        .where(and_(*window, log.kind.in_(("step", "sent", "skipped", "converted", "entered"))))
        .group_by(log.step_id, log.kind, log.reason, log.holdout)
    ).all()
    # where each exit happened: the enrollment's last step row before its exit row
    earlier = JOURNEY_LOG.alias("earlier")
    last_step = (
        select(earlier.c.step_id)
        .where(
            and_(
                earlier.c.enrollment_id == log.enrollment_id,
                earlier.c.kind == "step",
                earlier.c.id < log.id,
            )
        )
        .order_by(earlier.c.id.desc())
        .limit(1)
        .correlate(JOURNEY_LOG)
        .scalar_subquery()
        .label("last_step")
    )
    exits: Any = connection.execute(
        select(last_step, log.reason, func.count())
        .where(and_(*window, log.kind == "exited"))
        .group_by(last_step, log.reason)
    ).all()
    waiting: Any = connection.execute(
        select(ENROLLMENTS.c.step_id, ENROLLMENTS.c.holdout, func.count())
        .where(and_(ENROLLMENTS.c.journey_key == journey_key, ENROLLMENTS.c.state == "active"))
        .group_by(ENROLLMENTS.c.step_id, ENROLLMENTS.c.holdout)
    ).all()

    entered = holdout = converted = converted_holdout = untouched = waiting_holdout = 0
    refused: Counter[str] = Counter()
    reached: Counter[str] = Counter()
    sent: dict[str, Counter[str]] = defaultdict(Counter)
    skipped: dict[str, Counter[str]] = defaultdict(Counter)
    touched: Counter[str] = Counter()
    for step_id, kind, reason, is_holdout, rows, enrollments in facts:
        if kind == "entered":
            entered += rows
            holdout += rows if is_holdout else 0
        elif kind == "skipped" and step_id == ENTRY_STEP:
            refused[reason or "unknown"] += rows
        elif kind == "skipped":
            skipped[step_id or ENTRY_STEP][reason or "unknown"] += rows
        elif kind == "step":
            reached[step_id] += enrollments
        elif kind == "sent":
            sent[step_id][reason or "unknown"] += rows
        elif kind == "converted":
            converted += enrollments
            if is_holdout:
                converted_holdout += enrollments
            elif step_id is None:
                untouched += enrollments
            else:
                touched[step_id] += enrollments
    ended: dict[str, Counter[str]] = defaultdict(Counter)
    all_exits: Counter[str] = Counter()
    for step_id, reason, count in exits:
        all_exits[reason or "unknown"] += count
        if step_id is not None:
            ended[step_id][reason or "unknown"] += count
    on_step: Counter[str] = Counter()
    for step_id, is_holdout, count in waiting:
        if is_holdout:
            waiting_holdout += count
        elif step_id is not None:
            on_step[step_id] += count

    info = journey_info(connection, journey_key)
    order = list(info.steps)
    seen = {step_id for step_id, _ in order}
    extra = set(reached) | set(sent) | set(skipped) | set(touched) | set(ended) | set(on_step)
    order += [(step_id, "?") for step_id in sorted(extra - seen)]
    steps = [
        StepFunnel(
            step_id=step_id,
            type=kind,
            entered=reached[step_id],
            waiting=on_step[step_id],
            sent=dict(sorted(sent[step_id].items())),
            skipped=dict(sorted(skipped[step_id].items())),
            converted=touched[step_id],
            exited=dict(sorted(ended[step_id].items())),
        )
        for step_id, kind in order
    ]
    return Funnel(
        journey_key=journey_key,
        name=info.name,
        since=since,
        until=until,
        entered=entered,
        holdout=holdout,
        refused=dict(sorted(refused.items())),
        waiting_holdout=waiting_holdout,
        converted=converted,
        converted_holdout=converted_holdout,
        converted_untouched=untouched,
        exited=dict(sorted(all_exits.items())),
        steps=steps,
    )
