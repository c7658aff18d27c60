"""What enters a customer into a journey: an event, a segment, or a schedule.

Apart from the journey model so the runner's schedule watcher and the engine's
enrollment can name a trigger without the whole journey language. The discriminator
picks the model by the key present, so an unknown trigger gets one error that lists
the three kinds instead of three errors, one per kind it is not.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Discriminator, Field, Tag

from omni_journey.spec.conditions import EventName, Key, PropertyFilters, SpecModel
from omni_journey.spec.durations import ClockTime, Duration

__all__ = ["EventTrigger", "Schedule", "ScheduleTrigger", "SegmentTrigger", "Trigger"]


class EventTrigger(SpecModel):
    """Enter when the customer does an event (``where`` filters its properties)."""

    event: EventName
    where: PropertyFilters = Field(default_factory=dict)


class SegmentTrigger(SpecModel):
    """Enter when the customer enters a segment."""

    segment: Key


class Schedule(SpecModel):
    every: Duration = Field(description='How often the audience is taken ("1d", "1w").')
    at: ClockTime | None = Field(default=None, description="Time of day (UTC) to take it.")


class ScheduleTrigger(SpecModel):
    """Enter everyone in ``segment`` on a schedule (a scheduled audience)."""

    schedule: Schedule
    segment: Key


def _trigger_kind(value: Any) -> str | None:
    if isinstance(value, EventTrigger) or (isinstance(value, dict) and "event" in value):
        return "trigger:event"
    if isinstance(value, ScheduleTrigger) or (isinstance(value, dict) and "schedule" in value):
        return "trigger:schedule"
    if isinstance(value, SegmentTrigger) or (isinstance(value, dict) and "segment" in value):
        return "trigger:segment"
    return None


Trigger = Annotated[
    Annotated[EventTrigger, Tag("trigger:event")]
    | Annotated[ScheduleTrigger, Tag("trigger:schedule")]
    | Annotated[SegmentTrigger, Tag("trigger:segment")],
    Discriminator(
        _trigger_kind,
        custom_error_type="unknown-trigger",
        custom_error_message="expected a trigger with one of: event, segment, schedule",
    ),
]
