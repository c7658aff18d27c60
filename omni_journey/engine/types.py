"""Values the pure journey engine takes and returns.

The engine does no I/O: the service loads a batch of :class:`EnrollmentState`,
:class:`EventView` and :class:`CustomerFacts`, calls the engine with ``now``, and
applies the returned states and effects in bulk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, Protocol

from omni_journey.spec.conditions import Condition

__all__ = [
    "ACTIVE",
    "COMPLETED",
    "EXITED",
    "AdvanceResult",
    "CallWebhook",
    "Converted",
    "CustomerFacts",
    "Effect",
    "EnrollmentState",
    "Entered",
    "EntryCandidate",
    "EventView",
    "ExitJourney",
    "Facts",
    "ScheduleWakeup",
    "SendMessage",
    "Skip",
    "StepEntered",
    "UpdateAttributes",
]

ACTIVE: Final = "active"
COMPLETED: Final = "completed"
EXITED: Final = "exited"
State = Literal["active", "completed", "exited"]


@dataclass(frozen=True, slots=True)
class EventView:
    """One stored event, as the engine sees it."""

    event_id: str
    name: str
    customer_id: str
    at: datetime
    properties: Mapping[str, Any] = field(default_factory=dict)
    seq: int = 0


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    """What the engine may know of a customer at ``now``; loaded in bulk by the service.

    ``eligible`` maps channel -> None when the channel may be used, else the reason it may
    not (``no_consent``, ``unreachable``, ``suppressed``). ``sends_by_day`` counts messages
    already sent or queued, keyed by (journey key or ``"*"`` for all journeys, the local
    calendar date in the customer's zone as ISO text).
    """

    customer_id: str
    timezone: str = "UTC"
    attributes: Mapping[str, Any] = field(default_factory=dict)
    eligible: Mapping[str, str | None] = field(default_factory=dict)
    sends_by_day: Mapping[tuple[str, str], int] = field(default_factory=dict)


class Facts(Protocol):
    """Answers the conditions a journey asks about (branch arms, entry segments).

    The service answers them with set-based SQL for a whole batch before calling the
    engine; tests answer them from a dict.
    """

    def customer(self, customer_id: str) -> CustomerFacts: ...

    def holds(self, condition: Condition, customer_id: str) -> bool: ...

    def in_segment(self, segment_key: str, customer_id: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class EnrollmentState:
    """One customer's place in one journey version.

    ``context`` is JSON-safe and engine-owned: trigger event properties, step visit
    counts, chosen split variants, when a wait began, the last message sent.
    """

    id: int
    journey_key: str
    version_id: int
    customer_id: str
    step_id: str | None
    state: State
    entered_at: datetime
    wake_at: datetime | None = None
    holdout: bool = False
    trigger_event_id: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    ended_at: datetime | None = None
    end_reason: str | None = None


@dataclass(frozen=True, slots=True)
class EntryCandidate:
    """A customer who may enter a journey, and what the service knows of their history.

    ``event`` is the trigger event (``None`` for segment and schedule entry); ``active``
    says the customer already has an active enrollment in this journey (any version);
    ``last_entered_at`` is when they last entered it (``None``: never).
    """

    customer_id: str
    event: EventView | None = None
    active: bool = False
    last_entered_at: datetime | None = None


# --- effects: what the service must do ------------------------------------------


@dataclass(frozen=True, slots=True)
class Entered:
    """A new enrollment (id 0 until the service stores it)."""

    enrollment: EnrollmentState
    event_id: str | None


@dataclass(frozen=True, slots=True)
class StepEntered:
    enrollment_id: int
    customer_id: str
    step_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class SendMessage:
    """Queue one message. ``channels`` are the eligible candidates in preference order;
    ``choice`` is how the step chose (a channel, ``fallback`` or ``best``): the channel
    policy picks among ``channels`` and logs its decision."""

    enrollment_id: int
    customer_id: str
    journey_key: str
    version_id: int
    step_id: str
    message: str
    channels: tuple[str, ...]
    choice: str
    idempotency_key: str
    send_after: datetime
    send_at: str = "now"
    inputs: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class Skip:
    """A step that did nothing (or an entry refused), and why (``no_consent``,
    ``frequency_cap``, ``entry_segment``...); ``inputs`` holds the data that decided it
    (for the record; not part of equality)."""

    enrollment_id: int
    customer_id: str
    step_id: str
    reason: str
    at: datetime
    inputs: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class ScheduleWakeup:
    """Wake the enrollment at ``at``; a send put off (quiet hours, send window) says so
    in ``reason`` and keeps what decided it in ``inputs``. Two wake-ups are the same
    when enrollment, time and reason are (the rest explains, it does not decide)."""

    enrollment_id: int
    at: datetime
    reason: str
    customer_id: str = field(default="", compare=False)
    step_id: str | None = field(default=None, compare=False)
    inputs: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class ExitJourney:
    """The enrollment ended; ``event_id`` is the event that ended it, if one did."""

    enrollment_id: int
    customer_id: str
    reason: str
    at: datetime
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class Converted:
    """A goal event within the window; last touch = the last message sent before it."""

    enrollment_id: int
    customer_id: str
    journey_key: str
    event_id: str
    at: datetime
    holdout: bool
    last_step_id: str | None
    last_message: str | None


@dataclass(frozen=True, slots=True)
class UpdateAttributes:
    customer_id: str
    set: Mapping[str, Any]
    unset: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CallWebhook:
    enrollment_id: int
    customer_id: str
    step_id: str
    url: str
    body: Mapping[str, Any]
    headers: Mapping[str, str]
    idempotency_key: str


Effect = (
    Entered
    | StepEntered
    | SendMessage
    | Skip
    | ScheduleWakeup
    | ExitJourney
    | Converted
    | UpdateAttributes
    | CallWebhook
)


@dataclass(frozen=True, slots=True)
class AdvanceResult:
    """What :func:`~omni_journey.engine.advance` decided: every input state, in input
    order (changed or not), and the effects to apply, in the order they happened."""

    states: list[EnrollmentState]
    effects: list[Effect]
