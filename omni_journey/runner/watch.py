"""What a journey listens to, and when a scheduled audience is next due. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from omni_journey.engine.types import EventView
from omni_journey.segments.evaluate import SEGMENT_ENTERED
from omni_journey.spec.models import (
    EventTrigger,
    JourneySpec,
    Schedule,
    SegmentTrigger,
    WaitForStep,
)

__all__ = ["is_trigger", "next_schedule", "trigger_event", "watched_events"]


def trigger_event(spec: JourneySpec) -> str | None:
    """The event that enters customers: the trigger event, or ``segment.entered``."""
    if isinstance(spec.trigger, EventTrigger):
        return spec.trigger.event
    if isinstance(spec.trigger, SegmentTrigger):
        return SEGMENT_ENTERED
    return None


def is_trigger(spec: JourneySpec, event: EventView) -> bool:
    if event.name != trigger_event(spec):
        return False
    if isinstance(spec.trigger, SegmentTrigger):
        return event.properties.get("segment") == spec.trigger.segment
    return True


def watched_events(spec: JourneySpec) -> set[str]:
    """Every event name the journey reacts to: trigger, exits, goal, waits."""
    names = {exit_.event for exit_ in spec.exit_when}
    if spec.goal:
        names.add(spec.goal.event)
    names.update(step.event for step in spec.steps if isinstance(step, WaitForStep))
    trigger = trigger_event(spec)
    if trigger:
        names.add(trigger)
    return names


def next_schedule(schedule: Schedule, last: datetime | None, now: datetime) -> datetime:
    """When a scheduled audience is next due (UTC): ``every`` after the slot it last
    served, where a slot is ``at`` o'clock UTC when given; the first run is due at once."""
    if last is None:
        return now
    if schedule.at is None:
        return last + schedule.every
    slot = last.astimezone(UTC).replace(
        hour=schedule.at.hour, minute=schedule.at.minute, second=0, microsecond=0
    )
    if slot > last:
        slot -= timedelta(days=1)
    return slot + schedule.every
