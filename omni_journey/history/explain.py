"""Why a customer got (or did not get) a journey's messages: the decision record of one
customer in one journey, in order, each with its outcome, the rule or guard that
decided it and the data it used (``omni-journey explain``).

Read from ``journey_log``, which the runner writes for every decision. Outcomes:
``entered``; ``refused`` (at entry: ``journey_disabled``, ``already_active``,
``re_entry``, ``entry_segment``...); ``waiting`` (at a delay or a wait_for step);
``sent`` (the reason is the channel; the inputs hold the policy's choice, scores and
propensity); ``skipped`` (the guard: ``no_consent``, ``suppressed``, ``unreachable``,
``frequency_cap``, ``holdout``...); ``deferred`` (quiet hours, send window or a cap, with
``until``); ``exited`` (why); ``converted`` (the goal event and the last message).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from omni_journey.engine import ENTRY_STEP
from omni_journey.engine.filters import match_filters
from omni_journey.spec.durations import format_duration
from omni_journey.spec.models import JourneySpec
from omni_journey.spec.steps import DelayStep, WaitForStep
from omni_journey.spec.triggers import EventTrigger
from omni_journey.store.core import EVENTS, JOURNEY_CURSORS, JOURNEY_LOG, JOURNEY_SHARD_CURSORS
from omni_journey.store.shards import Shard
from omni_journey.store.tables import metadata

__all__ = ["Decision", "journey_decisions", "why_not_entered"]

SEGMENT_MEMBERSHIPS = metadata.tables["segment_memberships"]


@dataclass(frozen=True, slots=True)
class Decision:
    at: datetime
    step: str | None
    outcome: str
    reason: str | None
    inputs: Mapping[str, Any] = field(default_factory=dict)
    holdout: bool = False
    event_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "step": self.step,
            "outcome": self.outcome,
            "reason": self.reason,
            "inputs": dict(self.inputs),
            "holdout": self.holdout,
            "event_id": self.event_id,
        }


def _waiting(spec: JourneySpec | None, step_id: str | None) -> str | None:
    """What the customer waits for at ``step_id``, or None when the step does not wait."""
    step = next((s for s in spec.steps if s.id == step_id), None) if spec else None
    if isinstance(step, DelayStep):
        if step.for_ is not None:
            return f"delay for {format_duration(step.for_)}"
        return f"delay until {step.until:%H:%M}" if step.until else "delay"
    if isinstance(step, WaitForStep):
        return f"wait_for {step.event} (timeout {format_duration(step.timeout)})"
    return None


def journey_decisions(
    connection: Connection,
    customer_ids: Sequence[str],
    journey_key: str,
    spec: JourneySpec | None = None,
) -> list[Decision]:
    """Every decision the runner recorded for these customers (a survivor and the ids
    merged into it) in ``journey_key``, oldest first. ``spec`` (the journey as it is
    now) names what a customer waits for at delay and wait_for steps."""
    rows = connection.execute(
        select(JOURNEY_LOG)
        .where(
            JOURNEY_LOG.c.customer_id.in_(list(customer_ids)),
            JOURNEY_LOG.c.journey_key == journey_key,
        )
        .order_by(JOURNEY_LOG.c.id)
    )
    decisions: list[Decision] = []
    for row in rows:
        inputs = dict(row.detail or {})
        step, outcome, reason = row.step_id, str(row.kind), row.reason
        if row.kind == "skipped" and row.step_id == ENTRY_STEP:
            step, outcome = None, "refused"
        elif row.kind == "step":
            reason = _waiting(spec, row.step_id)
            if reason is None:
                continue  # passing through a step: the decision taken there follows
            outcome = "waiting"
        decisions.append(
            Decision(row.at, step, outcome, reason, inputs, bool(row.holdout), row.event_id)
        )
    return decisions


def _read_up_to(connection: Connection, journey_key: str, customer_id: str) -> int | None:
    """How far the journey's passes have read the events of ``customer_id``: the
    journey's cursor, or, for a journey run as several shards, the cursor of the shard
    that holds the customer."""
    row = connection.execute(
        select(JOURNEY_CURSORS.c.last_event_seq, JOURNEY_CURSORS.c.shards).where(
            JOURNEY_CURSORS.c.journey_key == journey_key
        )
    ).first()
    if row is None or row.shards <= 1:
        return None if row is None else int(row.last_event_seq)
    shard = next(s for s in Shard(1, row.shards).all() if s.holds(customer_id))
    found = connection.execute(
        select(JOURNEY_SHARD_CURSORS.c.last_event_seq).where(
            JOURNEY_SHARD_CURSORS.c.journey_key == journey_key,
            JOURNEY_SHARD_CURSORS.c.shards == row.shards,
            JOURNEY_SHARD_CURSORS.c.shard == shard.index,
        )
    ).scalar_one_or_none()
    return None if found is None else int(found)


def why_not_entered(
    connection: Connection, customer_ids: Sequence[str], spec: JourneySpec
) -> tuple[str, dict[str, Any]]:
    """For a customer with no decision in ``spec``'s journey: the rule that keeps them
    out as a reason code, and the data it looked at.

    ``no_trigger_event``: they never did the trigger event; ``trigger_filter``: they
    did, but never with the trigger's ``where``; ``trigger_not_seen``: the journey's
    passes have not read it yet (or it came before the journey first read events, or
    was older than ``OMNI_TRIGGER_MAX_AGE_HOURS`` when first seen); ``not_in_segment``:
    the trigger segment does not hold them (as of its last evaluation);
    ``segment_not_acted_on``: it does, and the next pass takes them in.
    """
    ids = list(customer_ids)
    trigger = spec.trigger
    if isinstance(trigger, EventTrigger):
        rows = connection.execute(
            select(
                EVENTS.c.seq,
                EVENTS.c.event_id,
                EVENTS.c.at,
                EVENTS.c.properties,
                EVENTS.c.customer_id,
            )
            .where(EVENTS.c.customer_id.in_(ids), EVENTS.c.name == trigger.event)
            .order_by(EVENTS.c.seq)
        ).all()
        inputs: dict[str, Any] = {"trigger": trigger.event, "events": len(rows)}
        if not rows:
            return "no_trigger_event", inputs
        matching = [r for r in rows if match_filters(trigger.where, r.properties or {})]
        if trigger.where:
            inputs["where"] = {k: str(v) for k, v in trigger.where.items()}
            inputs["matching"] = len(matching)
        if not matching:
            return "trigger_filter", inputs
        last = matching[-1]
        cursor = _read_up_to(connection, spec.key, last.customer_id)
        inputs |= {"last_event_id": last.event_id, "last_event_at": last.at.isoformat(),
                   "journey_read_up_to_seq": cursor, "last_event_seq": last.seq}  # fmt: skip
        return "trigger_not_seen", inputs
    segment = trigger.segment
    member = connection.execute(
        select(SEGMENT_MEMBERSHIPS.c.entered_at).where(
            SEGMENT_MEMBERSHIPS.c.segment_key == segment,
            SEGMENT_MEMBERSHIPS.c.customer_id.in_(ids),
        )
    ).scalar()
    if member is None:
        return "not_in_segment", {"segment": segment}
    return "segment_not_acted_on", {"segment": segment, "member_since": member.isoformat()}
