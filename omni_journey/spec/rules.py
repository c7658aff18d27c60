"""Journey-wide rules: who may enter (again), when a customer leaves or converts, and
when and how often they may be messaged.

Apart from the journey model because the engine and the channel policy use these
rules on their own (quiet hours, send windows and frequency caps are checked per
send, far from the journey file they came from).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field

from omni_journey.spec.conditions import EventName, Key, PropertyFilters, SpecModel
from omni_journey.spec.durations import ClockTime, Duration, parse_duration

__all__ = [
    "RE_ENTRY_PATTERN",
    "EntryRules",
    "ExitCondition",
    "FrequencyCap",
    "GoalSpec",
    "QuietHours",
    "SendWindow",
    "Versioning",
    "Weekday",
]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
RE_ENTRY_PATTERN = r"^(never|always|after ([0-9]+[wdhms])+)$"


class EntryRules(SpecModel):
    segment: Key | None = Field(default=None, description="Only customers in this segment enter.")
    re_entry: Annotated[str, Field(pattern=RE_ENTRY_PATTERN)] = Field(
        default="never",
        description="never | always | after <duration>: may a customer enter again?",
    )

    @property
    def re_entry_after(self) -> timedelta | None:
        """``None`` for never, ``timedelta(0)`` for always, else the cool-down."""
        if self.re_entry == "never":
            return None
        if self.re_entry == "always":
            return timedelta(0)
        return parse_duration(self.re_entry.removeprefix("after ").strip())


class ExitCondition(SpecModel):
    event: EventName
    where: PropertyFilters = Field(default_factory=dict)


class GoalSpec(SpecModel):
    event: EventName
    where: PropertyFilters = Field(default_factory=dict)
    within: Duration = Field(description="Conversions count within this time of entry.")


class QuietHours(SpecModel):
    """No sends between ``start`` and ``end`` in the customer's time zone; deferred, not dropped."""

    start: ClockTime
    end: ClockTime


class SendWindow(SpecModel):
    """Sends only on these days between these times, in the customer's time zone."""

    days: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    start: ClockTime
    end: ClockTime


class FrequencyCap(SpecModel):
    """At most ``max`` messages per ``per`` (calendar days in the customer's time zone)."""

    max: Annotated[int, Field(ge=1)]
    per: Duration


class Versioning(SpecModel):
    """What happens to customers in flight when the journey changes."""

    on_change: Literal["keep", "migrate"] = Field(
        default="keep",
        description="keep: in-flight customers finish on their version; migrate: move them.",
    )
    migrate: dict[str, Key] = Field(
        default_factory=dict,
        description="Removed step id -> the step customers waiting there move to.",
    )
