"""The engine's effects turned into rows: pure, no I/O, no clock.

:func:`effects_to_rows` takes what the engine decided for one batch (and the channel
policy's decision for each send, made before) and returns everything the runner writes
for it: outbox rows, journey-log rows (the decision record: what was decided, why, and
the inputs that decided it), the events journeys emit (``journey.exited``,
``journey.converted``), attribute updates, and the counts of the pass report. The
runner writes them with :mod:`omni_journey.runner.writes`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from omni_journey.engine.types import (
    CallWebhook,
    Converted,
    Effect,
    EnrollmentState,
    ExitJourney,
    ScheduleWakeup,
    SendMessage,
    Skip,
    StepEntered,
    UpdateAttributes,
)
from omni_journey.spec.diagnostics import Diagnostic

__all__ = [
    "DEFERRING_REASONS",
    "LOG_COLUMNS",
    "EmittedEvent",
    "PassReport",
    "Rows",
    "SendDecision",
    "effects_to_rows",
    "entries_to_rows",
    "log_row",
    "render_context",
]

# A wake-up for one of these reasons is a send put off, recorded as ``deferred``.
DEFERRING_REASONS = ("quiet_hours", "send_window")

LOG_COLUMNS = (  # what log_row builds; "at" last (bound as a timestamp)
    "journey_key",
    "journey_version_id",
    "enrollment_id",
    "customer_id",
    "step_id",
    "kind",
    "reason",
    "holdout",
    "event_id",
    "message_id",
    "detail",
    "at",
)


class SendDecision(Protocol):
    """What the channel policy decided for one send (see ``channels.policy.Decision``)."""

    @property
    def channel(self) -> str: ...

    @property
    def send_after(self) -> datetime | None: ...

    def as_log(self) -> dict[str, Any]: ...


@dataclass
class PassReport:
    """Counts per journey of what one pass did; ``refused``: why the pass did not run some
    journeys (their new version would strand customers: ``removed-step-in-use``, as
    ``validate`` reports it)."""

    journeys: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    refused: list[Diagnostic] = field(default_factory=list)

    def add(self, journey_key: str, kind: str, count: int = 1) -> None:
        self.journeys[journey_key][kind] += count

    def total(self, kind: str) -> int:
        return sum(counter[kind] for counter in self.journeys.values())


@dataclass(frozen=True, slots=True)
class EmittedEvent:
    """An event a journey emits about itself (other journeys may trigger on it)."""

    event_id: str
    name: str
    customer_id: str
    at: datetime
    properties: dict[str, Any]


@dataclass
class Rows:
    """Everything one batch of effects writes."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    events: list[EmittedEvent] = field(default_factory=list)
    updates: list[UpdateAttributes] = field(default_factory=list)


def log_row(
    key: str,
    version_id: int | None,
    enrollment_id: int | None,
    customer_id: str,
    step_id: str | None,
    kind: str,
    now: datetime,
    *,
    reason: str | None = None,
    holdout: bool = False,
    event_id: str | None = None,
    at: datetime | None = None,
    detail: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One journey-log row: a decision, its reason and the inputs that decided it."""
    return {
        "journey_key": key,
        "journey_version_id": version_id,
        "enrollment_id": enrollment_id,
        "customer_id": customer_id,
        "step_id": step_id,
        "kind": kind,
        "reason": reason,
        "holdout": holdout,
        "event_id": event_id,
        "message_id": None,
        "detail": dict(detail) if detail else None,
        "at": at or now,
    }


def render_context(context: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a message is rendered from besides the profile: the trigger event."""
    if not context:
        return {}
    return {"event": dict(context.get("trigger") or {}), "event_name": context.get("trigger_event")}


def effects_to_rows(
    key: str,
    effects: Sequence[Effect],
    decisions: Sequence[SendDecision],
    now: datetime,
    report: PassReport,
    *,
    version_id: int | None = None,
    contexts: Mapping[int, Mapping[str, Any]] | None = None,
) -> Rows:
    """The rows for ``effects``; ``decisions`` holds the policy's choice for each
    :class:`SendMessage` among them, in order. Counts go to ``report``."""
    contexts = contexts or {}
    decided: Iterator[SendDecision] = iter(decisions)
    rows = Rows()

    def log(
        effect: StepEntered | Skip | ScheduleWakeup | ExitJourney | Converted,
        step_id: str | None,
        kind: str,
        at: datetime,
        **extra: Any,
    ) -> None:
        rows.log.append(
            log_row(
                key, version_id, effect.enrollment_id, effect.customer_id, step_id, kind, now,
                at=at, **extra,
            )
        )  # fmt: skip

    for effect in effects:
        if isinstance(effect, StepEntered):
            log(effect, effect.step_id, "step", effect.at)
        elif isinstance(effect, SendMessage):
            _send(key, effect, next(decided), contexts, now, rows, report)
        elif isinstance(effect, Skip):
            log(effect, effect.step_id, "skipped", effect.at, reason=effect.reason,
                detail=effect.inputs)  # fmt: skip
            report.add(key, f"skipped:{effect.reason}")
            report.add(key, "skipped")
        elif isinstance(effect, ScheduleWakeup):
            if effect.reason.startswith(DEFERRING_REASONS):
                detail = {"until": effect.at.isoformat(), **effect.inputs}
                log(effect, effect.step_id, "deferred", now, reason=effect.reason, detail=detail)
                report.add(key, "deferred")
        elif isinstance(effect, ExitJourney):
            log(effect, None, "exited", effect.at, reason=effect.reason, event_id=effect.event_id)
            properties: dict[str, Any] = {"journey": key, "reason": effect.reason}
            rows.events.append(_emitted("journey.exited", effect, properties))
            report.add(key, "exited" if effect.reason != "completed" else "completed")
        elif isinstance(effect, Converted):
            log(effect, effect.last_step_id, "converted", effect.at, holdout=effect.holdout,
                event_id=effect.event_id, reason=effect.last_message)  # fmt: skip
            properties = {
                "journey": key,
                "holdout": effect.holdout,
                "event_id": effect.event_id,
                "message": effect.last_message,
            }
            rows.events.append(_emitted("journey.converted", effect, properties))
            report.add(key, "converted")
        elif isinstance(effect, UpdateAttributes):
            rows.updates.append(effect)
        elif isinstance(effect, CallWebhook):
            rows.messages.append(_webhook_row(key, version_id, effect, now))
            report.add(key, "webhooks")
    return rows


def entries_to_rows(
    key: str,
    states: Sequence[EnrollmentState],
    event_ids: Sequence[str | None],
    now: datetime,
    report: PassReport,
) -> Rows:
    """The rows for new enrollments (stored, so with their ids): an ``entered`` decision
    with its trigger event and holdout, and a ``journey.entered`` event each."""
    rows = Rows()
    for state, event_id in zip(states, event_ids, strict=True):
        rows.log.append(
            log_row(
                key, state.version_id, state.id, state.customer_id, None, "entered", now,
                holdout=state.holdout, event_id=event_id, at=state.entered_at,
            )
        )  # fmt: skip
        rows.events.append(
            EmittedEvent(
                f"journey.entered:{state.id}", "journey.entered", state.customer_id,
                state.entered_at, {"journey": key, "holdout": state.holdout},
            )
        )  # fmt: skip
    report.add(key, "entered", len(states))
    return rows


def _emitted(
    name: str, effect: ExitJourney | Converted, properties: dict[str, Any]
) -> EmittedEvent:
    """The event a journey emits about an enrollment (one per enrollment and name)."""
    return EmittedEvent(
        f"{name}:{effect.enrollment_id}", name, effect.customer_id, effect.at, properties
    )


def _send(
    key: str,
    effect: SendMessage,
    decision: SendDecision,
    contexts: Mapping[int, Mapping[str, Any]],
    now: datetime,
    rows: Rows,
    report: PassReport,
) -> None:
    send_after = decision.send_after or effect.send_after
    logged = decision.as_log()
    rows.messages.append(
        {
            "idempotency_key": effect.idempotency_key,
            "enrollment_id": effect.enrollment_id,
            "journey_key": effect.journey_key,
            "journey_version_id": effect.version_id,
            "step_id": effect.step_id,
            "customer_id": effect.customer_id,
            "channel": decision.channel,
            "message_key": effect.message,
            "status": "pending",
            "send_after": send_after,
            "created_at": now,
            "attempts": 0,
            "decision": logged,
            "render_context": render_context(contexts.get(effect.enrollment_id)),
        }
    )
    rows.log.append(
        log_row(
            key,
            effect.version_id,
            effect.enrollment_id,
            effect.customer_id,
            effect.step_id,
            "sent",
            now,
            reason=decision.channel,
            at=send_after,
            detail={
                "message": effect.message,
                "choice": effect.choice,
                "candidates": list(effect.channels),
                "idempotency_key": effect.idempotency_key,
                **effect.inputs,
                "decision": logged,
            },
        )
    )
    report.add(key, f"queued:{decision.channel}")
    report.add(key, "queued")


def _webhook_row(
    key: str, version_id: int | None, effect: CallWebhook, now: datetime
) -> dict[str, Any]:
    return {
        "idempotency_key": effect.idempotency_key,
        "enrollment_id": effect.enrollment_id,
        "journey_key": key,
        "journey_version_id": version_id,
        "step_id": effect.step_id,
        "customer_id": effect.customer_id,
        "channel": "webhook",
        "message_key": effect.step_id,
        "status": "pending",
        "send_after": now,
        "created_at": now,
        "attempts": 0,
        "decision": {
            "url": effect.url,
            "body": dict(effect.body),
            "headers": dict(effect.headers),
        },
        "render_context": {},
    }
