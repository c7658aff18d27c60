"""Journey and segment specs: what marketers write in ``journeys/`` and ``segments/``.

The models are the single source of truth: the JSON Schema in ``schemas/`` is
generated from them and the docs describe them. Models are frozen and reject
unknown keys. Cross-reference checks (step ids, segments, messages) live in
:mod:`omni_journey.spec.checks`.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag, field_validator, model_validator
from pydantic_core import PydanticCustomError

from omni_journey.spec.conditions import (
    Channel,
    Condition,
    EventName,
    Key,
    PropertyFilters,
    Scalar,
    SpecModel,
)
from omni_journey.spec.durations import ClockTime, Duration, Percent, parse_duration

__all__ = [
    "STEP_KINDS",
    "BranchArm",
    "BranchStep",
    "DelayStep",
    "EntryRules",
    "EventTrigger",
    "ExitCondition",
    "ExitStep",
    "FrequencyCap",
    "GoalSpec",
    "JourneySpec",
    "QuietHours",
    "ScheduleTrigger",
    "SegmentSpec",
    "SegmentTrigger",
    "SendStep",
    "SendWindow",
    "SplitStep",
    "SplitVariant",
    "Step",
    "Trigger",
    "UpdateStep",
    "Versioning",
    "WaitForStep",
    "WebhookStep",
]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
RE_ENTRY_PATTERN = r"^(never|always|after ([0-9]+[wdhms])+)$"


# --- triggers -------------------------------------------------------------------


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


# --- journey-wide rules ---------------------------------------------------------


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


# --- steps ----------------------------------------------------------------------


class _Step(SpecModel):
    id: Key = Field(description="Stable id of the step; enrollments point at it.")
    name: str | None = Field(default=None, description="Human label for reports.")
    next: Key | None = Field(
        default=None, description="Step to go to after this one (default: the following step)."
    )


class DelayStep(_Step):
    """Wait a duration, or until a time of day in the customer's time zone."""

    type: Literal["delay"]
    for_: Duration | None = Field(default=None, alias="for")
    until: ClockTime | None = None

    @model_validator(mode="after")
    def _one_of(self) -> DelayStep:
        if self.for_ is None and self.until is None:
            raise PydanticCustomError(
                "missing-field",
                'needs "for" (a duration) or "until" (a time of day)',
                {"hint": 'add for: 1d to wait a day, or until: "09:00" to wait for 9 am'},
            )
        if self.for_ is not None and self.until is not None:
            raise PydanticCustomError(
                "invalid-value",
                'has both "for" and "until"; a delay takes only one of them',
                {"hint": 'keep "for" to wait a duration, or "until" to wait for a time of day'},
            )
        return self


class WaitForStep(_Step):
    """Wait for an event; go to ``on_event`` if it happens, ``on_timeout`` if not."""

    type: Literal["wait_for"]
    event: EventName
    where: PropertyFilters = Field(default_factory=dict)
    timeout: Duration
    on_event: Key | None = Field(default=None, description="Step when the event happens.")
    on_timeout: Key | None = Field(default=None, description="Step when the timeout passes.")


class BranchArm(SpecModel):
    when: Condition
    next: Key


class BranchStep(_Step):
    """The first arm whose condition holds decides the next step; else ``else``."""

    type: Literal["branch"]
    arms: Annotated[tuple[BranchArm, ...], Field(min_length=1)]
    else_: Key | None = Field(default=None, alias="else")


class SplitVariant(SpecModel):
    name: Key
    weight: Annotated[int, Field(ge=1, le=10_000)]
    next: Key | None = None


class SplitStep(_Step):
    """A weighted A/B/n split, deterministic per customer."""

    type: Literal["split"]
    variants: Annotated[tuple[SplitVariant, ...], Field(min_length=2)]


ChannelChoice = Union[Literal["best"], Channel, Annotated[tuple[Channel, ...], Field(min_length=1)]]


class SendStep(_Step):
    """Send one message on one channel: fixed, a fallback order, or ``best``."""

    type: Literal["send"]
    message: Key
    channel: ChannelChoice = "best"
    send_at: Literal["now", "best"] = Field(
        default="now", description="best: the customer's best hour within the next day."
    )


class UpdateStep(_Step):
    """Set (or unset) profile attributes."""

    type: Literal["update"]
    set: dict[str, Scalar] = Field(default_factory=dict)
    unset: tuple[str, ...] = ()


class WebhookStep(_Step):
    """POST JSON to a URL, signed with ``OMNI_SECRET_KEY`` (header ``X-Omni-Signature``)."""

    type: Literal["webhook"]
    url: Annotated[str, Field(pattern=r"^https?://[^\s]+$")]
    body: dict[str, Any] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Duration = Field(default=timedelta(seconds=10), description="Give up after this.")


class ExitStep(_Step):
    """End the journey here."""

    type: Literal["exit"]
    reason: str | None = None


STEP_KINDS: dict[str, type[_Step]] = {
    "delay": DelayStep,
    "wait_for": WaitForStep,
    "branch": BranchStep,
    "split": SplitStep,
    "send": SendStep,
    "update": UpdateStep,
    "webhook": WebhookStep,
    "exit": ExitStep,
}


def _step_kind(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return f"step:{kind}" if kind in STEP_KINDS else None


Step = Annotated[
    Annotated[DelayStep, Tag("step:delay")]
    | Annotated[WaitForStep, Tag("step:wait_for")]
    | Annotated[BranchStep, Tag("step:branch")]
    | Annotated[SplitStep, Tag("step:split")]
    | Annotated[SendStep, Tag("step:send")]
    | Annotated[UpdateStep, Tag("step:update")]
    | Annotated[WebhookStep, Tag("step:webhook")]
    | Annotated[ExitStep, Tag("step:exit")],
    Discriminator(
        _step_kind,
        custom_error_type="unknown-step-type",
        custom_error_message="expected type: one of " + ", ".join(STEP_KINDS),
    ),
]


# --- the journey ----------------------------------------------------------------


class JourneySpec(SpecModel):
    """One journey: who enters, when, and what happens to them step by step."""

    key: Key = Field(description="Unique key; must equal the file name without .yaml.")
    name: str | None = None
    description: str | None = None
    enabled: bool = True
    trigger: Trigger
    entry: EntryRules = Field(default_factory=EntryRules)
    exit_when: tuple[ExitCondition, ...] = ()
    goal: GoalSpec | None = None
    holdout: Percent | None = Field(default=None, description="Deterministic control group.")
    quiet_hours: QuietHours | None = None
    send_window: SendWindow | None = None
    frequency_cap: FrequencyCap | None = None
    versioning: Versioning = Field(default_factory=Versioning)
    steps: Annotated[tuple[Step, ...], Field(min_length=1)]

    @field_validator("holdout")
    @classmethod
    def _holdout_below_half(cls, value: float | None) -> float | None:
        if value is not None and value > 0.5:
            raise PydanticCustomError(
                "invalid-percent",
                "a holdout above 50% leaves most customers untreated",
                {"hint": 'use at most "50%"; "5%" to "10%" is usual'},
            )
        return value

    def canonical(self) -> dict[str, Any]:
        """The canonical JSON form: what a journey version stores and hashes."""
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=True)

    def version_hash(self) -> str:
        payload = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def following(self, step_id: str) -> str | None:
        """The step after ``step_id`` in file order (``None``: the journey ends)."""
        ids = [s.id for s in self.steps]
        index = ids.index(step_id)
        return ids[index + 1] if index + 1 < len(ids) else None

    def default_next(self, step_id: str) -> str | None:
        """Where a step goes when it names no other target: its ``next``, else the
        following step in file order (``None``: the journey ends)."""
        step = self.step(step_id)
        return step.next if step.next is not None else self.following(step_id)

    def successors(self, step_id: str) -> tuple[str | None, ...]:
        """Every step ``step_id`` may go to, in a stable order (``None``: the journey ends).

        wait_for: ``on_event`` and ``on_timeout``; branch: each arm's ``next``, then
        ``else``; split: each variant's ``next``; exit: nothing; any other step: one.
        A target left out defaults to :meth:`default_next`.
        """
        step = self.step(step_id)
        fallback = self.default_next(step_id)
        targets: list[str | None]
        if isinstance(step, ExitStep):
            return ()
        if isinstance(step, WaitForStep):
            targets = [step.on_event or fallback, step.on_timeout or fallback]
        elif isinstance(step, BranchStep):
            targets = [*(arm.next for arm in step.arms), step.else_ or fallback]
        elif isinstance(step, SplitStep):
            targets = [variant.next or fallback for variant in step.variants]
        else:
            targets = [fallback]
        return tuple(dict.fromkeys(targets))


class SegmentSpec(SpecModel):
    """A named set of customers, defined by one condition."""

    key: Key = Field(description="Unique key; must equal the file name without .yaml.")
    name: str | None = None
    description: str | None = None
    match: Condition


def slug_ok(value: str) -> bool:
    return re.fullmatch(r"[a-z][a-z0-9_]*", value) is not None
