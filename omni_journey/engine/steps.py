"""The step machine: walk one enrollment through instant steps until it waits or ends.

Time: each enrollment carries a logical time ``t`` (never after ``now``). A step is
entered at ``t``; a delay or a wait starts at ``t``, so a late run catches up exactly
(a delay that ended at 10:00 hands over at 10:00, and a following ``wait_for`` counts
events from 10:00). Actions the world sees (send, update, webhook) happen at ``now``
and move ``t`` to ``now``. A step reached a second time in one call starts at ``now``
(so a late run goes round a loop at most once). An event ends at most one wait, and
a wait only sees events after the one that ended the previous wait.

Context keys written here (all JSON-safe):

``visits``          {step id: times entered} (the idempotency key's last part)
``step``            {"id", "visit", "since" (ISO time it was entered), "deferred"?}
``split``           {split step id: chosen variant name}
``last_step_id``    the last send step that queued a message
``last_message``    that step's message key
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from omni_journey.engine.clock import next_local_time_after, zone
from omni_journey.engine.compile import CompiledJourney, CompiledStep
from omni_journey.engine.filters import match_filters
from omni_journey.engine.guards import SendLedger, decide_send
from omni_journey.engine.hashing import choose_variant, split_bucket
from omni_journey.engine.types import (
    ACTIVE,
    COMPLETED,
    EXITED,
    CallWebhook,
    Effect,
    EnrollmentState,
    EventView,
    ExitJourney,
    Facts,
    ScheduleWakeup,
    SendMessage,
    Skip,
    State,
    StepEntered,
    UpdateAttributes,
)
from omni_journey.spec.models import (
    BranchStep,
    DelayStep,
    ExitStep,
    FrequencyCap,
    SendStep,
    SplitStep,
    UpdateStep,
    WaitForStep,
    WebhookStep,
)

__all__ = ["MAX_TRANSITIONS", "Env", "Run", "end", "run_steps"]

MAX_TRANSITIONS = 100


@dataclass(frozen=True, slots=True)
class Env:
    """What every enrollment in one ``advance`` call shares."""

    journey: CompiledJourney
    facts: Facts
    now: datetime
    ledger: SendLedger
    global_cap: FrequencyCap | None


@dataclass(slots=True)
class Run:
    """A working copy of one enrollment during one ``advance`` call."""

    state: EnrollmentState
    context: dict[str, Any]
    t: datetime
    step_id: str | None = None
    wake_at: datetime | None = None
    wake_reason: str | None = None
    wake_inputs: dict[str, Any] = field(default_factory=dict)
    status: State = ACTIVE
    ended_at: datetime | None = None
    end_reason: str | None = None
    transitions: int = 0
    entered_here: set[str] = field(default_factory=set)
    consumed: tuple[datetime, int, str] | None = None  # the event that ended the last wait
    effects: list[Effect] = field(default_factory=list)

    def finish(self) -> EnrollmentState:
        if self.wake_reason is not None and self.status == ACTIVE and self.wake_at is not None:
            self.effects.append(
                ScheduleWakeup(
                    self.state.id,
                    self.wake_at,
                    self.wake_reason,
                    self.state.customer_id,
                    self.step_id,
                    self.wake_inputs,
                )
            )
        return replace(
            self.state,
            step_id=self.step_id,
            state=self.status,
            wake_at=self.wake_at if self.status == ACTIVE else None,
            context=self.context,
            ended_at=self.ended_at,
            end_reason=self.end_reason,
        )

    def wait(self, until: datetime, reason: str) -> None:
        """Stay on the current step until ``until`` (a ``ScheduleWakeup`` if that is news)."""
        if until != self.state.wake_at or self.step_id != self.state.step_id:
            self.wake_reason = reason
        self.wake_at = until


def end(run: Run, status: State, reason: str, at: datetime, event_id: str | None = None) -> None:
    """End the enrollment; every ending yields one ``ExitJourney`` (reason ``completed``
    or ``holdout`` for a completion; ``event_id`` the event that ended it, if any)."""
    run.status, run.end_reason, run.ended_at = status, reason, at
    run.effects.append(ExitJourney(run.state.id, run.state.customer_id, reason, at, event_id))


def run_steps(run: Run, env: Env, events: list[EventView]) -> None:
    """Move ``run`` from its current step until it waits or ends."""
    journey = env.journey
    if run.step_id is None:
        end(run, COMPLETED, "completed", run.t)
        return
    if run.step_id not in journey.steps:
        end(run, EXITED, "unknown_step", env.now)
        return
    if run.context.get("step", {}).get("id") == run.step_id:
        run.entered_here.add(run.step_id)
        outcome = _execute(run, env, journey.steps[run.step_id], events, resumed=True)
    else:  # a new enrollment, or one a migration moved: enter the step now
        outcome = _enter(run, env, run.step_id, events)
    while outcome is not None and run.step_id is not None:
        target = journey.next_step(run.step_id, outcome)
        if target is None:
            end(run, COMPLETED, "completed", run.t)
            return
        if run.transitions >= MAX_TRANSITIONS:
            end(run, EXITED, "loop_limit", env.now)
            return
        outcome = _enter(run, env, target, events)


def _enter(run: Run, env: Env, step_id: str, events: list[EventView]) -> str | None:
    if step_id in run.entered_here:
        run.t = env.now
    run.transitions += 1
    run.entered_here.add(step_id)
    visits: dict[str, int] = run.context.setdefault("visits", {})
    visits[step_id] = visits.get(step_id, 0) + 1
    run.context["step"] = {"id": step_id, "visit": visits[step_id], "since": run.t.isoformat()}
    run.step_id = step_id
    run.effects.append(StepEntered(run.state.id, run.state.customer_id, step_id, run.t))
    return _execute(run, env, env.journey.steps[step_id], events, resumed=False)


def _execute(
    run: Run, env: Env, step: CompiledStep, events: list[EventView], *, resumed: bool
) -> str | None:
    """Run one step: the outcome to follow, or ``None`` when the enrollment stays or ended."""
    spec = step.spec
    now, customer_id = env.now, run.state.customer_id
    if isinstance(spec, DelayStep):
        if resumed:
            until = run.wake_at or now
        elif spec.for_ is not None:
            until = run.t + spec.for_
        else:
            assert spec.until is not None
            # strictly after: "until 09:00" at 09:00 means tomorrow, so loops always wait
            until = next_local_time_after(run.t, spec.until, _zone_or_utc(env, customer_id))
        return _pass_at(run, env, until, "delay")
    if isinstance(spec, WaitForStep):
        return _wait_for(run, env, spec, events, resumed=resumed)
    if isinstance(spec, BranchStep):
        for index, arm in enumerate(spec.arms):
            if env.facts.holds(arm.when, customer_id):
                return f"arm:{index}"
        return "else"
    if isinstance(spec, SplitStep):
        chosen: dict[str, str] = run.context.setdefault("split", {})
        names = {variant.name for variant in spec.variants}
        if chosen.get(spec.id) not in names:
            bucket = split_bucket(env.journey.key, spec.id, customer_id)
            chosen[spec.id] = choose_variant(spec.variants, bucket).name
        return f"variant:{chosen[spec.id]}"
    if isinstance(spec, SendStep):
        if resumed and run.wake_at is not None and run.wake_at > now:
            return None  # a deferred send, not due yet
        return _send(run, env, spec)
    if isinstance(spec, UpdateStep):
        run.effects.append(UpdateAttributes(customer_id, dict(spec.set), tuple(spec.unset)))
        run.t = now
        return "next"
    if isinstance(spec, WebhookStep):
        run.effects.append(
            CallWebhook(
                run.state.id,
                customer_id,
                spec.id,
                spec.url,
                dict(spec.body),
                dict(spec.headers),
                _idempotency_key(run, env),
            )
        )
        run.t = now
        return "next"
    assert isinstance(spec, ExitStep)
    end(run, EXITED, spec.reason or f"exit_step:{spec.id}", run.t)
    return None


def _pass_at(run: Run, env: Env, until: datetime, reason: str) -> str | None:
    if until <= env.now:
        run.t = max(run.t, until)
        return "next"
    run.wait(until, reason)
    return None


def _wait_for(
    run: Run, env: Env, spec: WaitForStep, events: list[EventView], *, resumed: bool
) -> str | None:
    since = run.t
    if resumed:
        since = _parse(run.context["step"].get("since"), run.state.entered_at)
    deadline = (run.wake_at if resumed else None) or since + spec.timeout
    for event in events:
        order = (event.at, event.seq, event.event_id)
        if (
            event.name == spec.event
            and since <= event.at < deadline
            and (run.consumed is None or order > run.consumed)
            and match_filters(spec.where, event.properties)
        ):
            run.t, run.consumed = event.at, order
            return "event"
    if deadline <= env.now:
        run.t = deadline
        return "timeout"
    run.wait(deadline, "wait_for")
    return None


def _send(run: Run, env: Env, spec: SendStep) -> str | None:
    now, state = env.now, run.state
    customer = env.facts.customer(state.customer_id)
    decision = decide_send(env.journey.spec, spec, customer, now, env.ledger, env.global_cap)
    if decision.action == "defer":
        assert decision.until is not None
        run.context["step"]["deferred"] = decision.reason
        run.wait(decision.until, decision.reason)
        run.wake_inputs = dict(decision.inputs)
        return None
    run.context["step"].pop("deferred", None)
    if decision.action == "skip":
        run.effects.append(
            Skip(state.id, state.customer_id, spec.id, decision.reason, now, decision.inputs)
        )
    else:
        run.effects.append(
            SendMessage(
                enrollment_id=state.id,
                customer_id=state.customer_id,
                journey_key=state.journey_key,
                version_id=state.version_id,
                step_id=spec.id,
                message=spec.message,
                channels=decision.channels,
                choice=decision.choice,
                idempotency_key=_idempotency_key(run, env),
                send_after=now,
                send_at=spec.send_at,
                inputs=decision.inputs,
            )
        )
        run.context["last_step_id"] = spec.id
        run.context["last_message"] = spec.message
    run.t = now
    return "next"


def _idempotency_key(run: Run, env: Env) -> str:
    state, step = run.state, run.context["step"]
    return f"{state.journey_key}:{env.journey.version_id}:{state.id}:{step['id']}:{step['visit']}"


def _zone_or_utc(env: Env, customer_id: str) -> ZoneInfo:
    return zone(env.facts.customer(customer_id).timezone) or ZoneInfo("UTC")


def _parse(value: object, default: datetime) -> datetime:
    if not isinstance(value, str):
        return default
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
