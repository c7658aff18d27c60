"""Journey and segment specs: what marketers write in ``journeys/`` and ``segments/``.

The models are the single source of truth: the JSON Schema in ``schemas/`` is
generated from them and the docs describe them. Models are frozen and reject
unknown keys. Cross-reference checks (step ids, segments, messages) live in
:mod:`omni_journey.spec.checks`.

The parts of a journey live by concept (:mod:`~omni_journey.spec.triggers`,
:mod:`~omni_journey.spec.rules`, :mod:`~omni_journey.spec.steps`); they are
importable from here too, where the rest of the code base has always found them.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from omni_journey.spec.conditions import Condition, Key, SpecModel
from omni_journey.spec.durations import Percent
from omni_journey.spec.rules import (
    RE_ENTRY_PATTERN,
    EntryRules,
    ExitCondition,
    FrequencyCap,
    GoalSpec,
    QuietHours,
    SendWindow,
    Versioning,
    Weekday,
)
from omni_journey.spec.steps import (
    STEP_KINDS,
    BranchArm,
    BranchStep,
    ChannelChoice,
    DelayStep,
    ExitStep,
    SendStep,
    SplitStep,
    SplitVariant,
    Step,
    UpdateStep,
    WaitForStep,
    WebhookStep,
)
from omni_journey.spec.triggers import (
    EventTrigger,
    Schedule,
    ScheduleTrigger,
    SegmentTrigger,
    Trigger,
)

__all__ = [
    "RE_ENTRY_PATTERN",
    "STEP_KINDS",
    "BranchArm",
    "BranchStep",
    "ChannelChoice",
    "DelayStep",
    "EntryRules",
    "EventTrigger",
    "ExitCondition",
    "ExitStep",
    "FrequencyCap",
    "GoalSpec",
    "JourneySpec",
    "QuietHours",
    "Schedule",
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
    "Weekday",
    "slug_ok",
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
