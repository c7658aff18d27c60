"""The steps of a journey: delay, wait_for, branch, split, send, update, webhook, exit.

Apart from the journey model because each step kind is its own small model that the
engine, the validator's hints and the docs address by ``type`` (:data:`STEP_KINDS`).
The discriminator picks the model by ``type``, so a misspelt type gets one error that
lists the kinds instead of one error per kind.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag, model_validator
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
from omni_journey.spec.durations import ClockTime, Duration

__all__ = [
    "STEP_KINDS",
    "BranchArm",
    "BranchStep",
    "ChannelChoice",
    "DelayStep",
    "ExitStep",
    "SendStep",
    "SplitStep",
    "SplitVariant",
    "Step",
    "UpdateStep",
    "WaitForStep",
    "WebhookStep",
]


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
