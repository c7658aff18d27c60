"""Entry: who enters a journey, and who is refused and why.

Candidates are taken in time order (trigger time, then arrival order; segment and
schedule candidates at ``now``). Events that do not match the trigger (other names,
``where`` filters that fail) are not candidates and produce nothing. A matching
candidate is refused with a :class:`Skip` (step id ``"(entry)"``), first reason wins:

``journey_disabled``  the journey has ``enabled: false``
``already_active``    an active enrollment exists (or one was made earlier in this batch)
``re_entry``          ``re_entry: never`` and they entered before, or inside ``after <d>``
``entry_segment``     not in ``entry.segment``
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from omni_journey.engine.compile import CompiledJourney
from omni_journey.engine.filters import match_filters
from omni_journey.engine.hashing import holdout_bucket
from omni_journey.engine.types import (
    ACTIVE,
    Effect,
    EnrollmentState,
    Entered,
    EntryCandidate,
    Facts,
    Skip,
)
from omni_journey.spec.durations import format_duration
from omni_journey.spec.models import EventTrigger

__all__ = ["ENTRY_STEP", "evaluate_entry", "require_aware"]

ENTRY_STEP = "(entry)"


def require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime (UTC)")


def evaluate_entry(
    journey: CompiledJourney,
    candidates: Sequence[EntryCandidate],
    facts: Facts,
    now: datetime,
) -> list[Effect]:
    """``Entered`` for each customer who enters, ``Skip`` for each refused one."""
    require_aware(now)
    spec = journey.spec
    effects: list[Effect] = []
    entered: set[str] = set()
    for candidate in sorted(candidates, key=lambda c: _when(c, now)):
        if not _matches_trigger(journey, candidate):
            continue
        entered_at = min(candidate.event.at, now) if candidate.event else now
        refusal = _refusal(journey, candidate, entered_at, facts, entered)
        if refusal is not None:
            reason, inputs = refusal
            effects.append(Skip(0, candidate.customer_id, ENTRY_STEP, reason, now, inputs))
            continue
        entered.add(candidate.customer_id)
        holdout = spec.holdout is not None and (
            holdout_bucket(spec.key, candidate.customer_id) < spec.holdout
        )
        event = candidate.event
        context: dict[str, Any] = {
            "trigger": copy.deepcopy(dict(event.properties)) if event else {},
            "trigger_event": event.name if event else None,
            "visits": {},
        }
        enrollment = EnrollmentState(
            id=0,
            journey_key=spec.key,
            version_id=journey.version_id,
            customer_id=candidate.customer_id,
            step_id=None if holdout else journey.first_step,
            state=ACTIVE,
            entered_at=entered_at,
            wake_at=now,
            holdout=holdout,
            trigger_event_id=event.event_id if event else None,
            context=context,
        )
        effects.append(Entered(enrollment, event.event_id if event else None))
    return effects


def _when(candidate: EntryCandidate, now: datetime) -> tuple[datetime, int]:
    event = candidate.event
    return (min(event.at, now), event.seq) if event else (now, 0)


def _matches_trigger(journey: CompiledJourney, candidate: EntryCandidate) -> bool:
    trigger = journey.spec.trigger
    if not isinstance(trigger, EventTrigger):
        return True
    event = candidate.event
    return (
        event is not None
        and event.name == trigger.event
        and event.customer_id == candidate.customer_id
        and match_filters(trigger.where, event.properties)
    )


def _refusal(
    journey: CompiledJourney,
    candidate: EntryCandidate,
    entered_at: datetime,
    facts: Facts,
    entered: set[str],
) -> tuple[str, dict[str, Any]] | None:
    """The first rule that keeps the candidate out, with the data it looked at."""
    rules = journey.spec.entry
    trigger = {"event_id": candidate.event.event_id} if candidate.event else {}
    if not journey.spec.enabled:
        return "journey_disabled", trigger
    if candidate.active or candidate.customer_id in entered:
        return "already_active", trigger
    if candidate.last_entered_at is not None:
        cool_down = rules.re_entry_after
        if cool_down is None or entered_at - candidate.last_entered_at < cool_down:
            rule = "never" if cool_down is None else f"after {format_duration(cool_down)}"
            last = candidate.last_entered_at.isoformat()
            return "re_entry", {**trigger, "re_entry": rule, "last_entered_at": last}
    if rules.segment is not None and not facts.in_segment(rules.segment, candidate.customer_id):
        return "entry_segment", {**trigger, "segment": rules.segment}
    return None
