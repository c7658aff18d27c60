"""Test doubles for the engine: facts from dicts, and a tiny in-memory service loop."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from omni_journey.engine import (
    CompiledJourney,
    EntryCandidate,
    advance,
    compile_journey,
    evaluate_entry,
)
from omni_journey.engine.clock import local_date, zone
from omni_journey.engine.types import (
    ACTIVE,
    CustomerFacts,
    Effect,
    EnrollmentState,
    Entered,
    EventView,
    SendMessage,
    StepEntered,
)
from omni_journey.spec.conditions import (
    AttributeCondition,
    Condition,
    SegmentCondition,
)
from omni_journey.spec.models import FrequencyCap, JourneySpec

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)  # a Monday, noon UTC
ALL_OK = {"email": None, "sms": None, "push": None, "whatsapp": None}


def journey(version_id: int = 1, **spec: Any) -> CompiledJourney:
    spec.setdefault("key", "j")
    spec.setdefault("trigger", {"event": "product.added"})
    return compile_journey(JourneySpec.model_validate(spec), version_id)


def event(
    name: str,
    customer_id: str = "c1",
    at: datetime = T0,
    seq: int = 0,
    event_id: str | None = None,
    **properties: Any,
) -> EventView:
    return EventView(
        event_id=event_id or f"{name}:{customer_id}:{at.isoformat()}:{seq}",
        name=name,
        customer_id=customer_id,
        at=at,
        properties=properties,
        seq=seq,
    )


class FakeFacts:
    """Facts answered from dicts: customers, segment members, and attribute equality."""

    def __init__(
        self,
        customers: Mapping[str, CustomerFacts] | None = None,
        segments: Mapping[str, Iterable[str]] | None = None,
        default_tz: str = "UTC",
    ) -> None:
        self.customers = dict(customers or {})
        self.segments = {key: set(members) for key, members in (segments or {}).items()}
        self.default_tz = default_tz

    def customer(self, customer_id: str) -> CustomerFacts:
        found = self.customers.get(customer_id)
        if found is None:
            found = CustomerFacts(customer_id, timezone=self.default_tz, eligible=ALL_OK)
        return found

    def in_segment(self, segment_key: str, customer_id: str) -> bool:
        return customer_id in self.segments.get(segment_key, set())

    def holds(self, condition: Condition, customer_id: str) -> bool:
        if isinstance(condition, SegmentCondition):
            return self.in_segment(condition.segment, customer_id)
        if isinstance(condition, AttributeCondition):
            value = self.customer(customer_id).attributes.get(condition.attribute)
            return value == condition.equals
        raise NotImplementedError(type(condition).__name__)


def stored(effects: Sequence[Effect], first_id: int = 1) -> list[EnrollmentState]:
    """The enrollments of ``Entered`` effects, with ids as the service would give them."""
    entered = [e.enrollment for e in effects if isinstance(e, Entered)]
    return [replace(state, id=first_id + i) for i, state in enumerate(entered)]


def enter_and_advance(
    j: CompiledJourney,
    events: Sequence[EventView],
    facts: FakeFacts,
    now: datetime,
    global_cap: FrequencyCap | None = None,
) -> tuple[list[EnrollmentState], list[Effect]]:
    """Enter everyone triggered by ``events`` and advance them once, as the service does."""
    candidates = [EntryCandidate(e.customer_id, e) for e in events]
    effects = evaluate_entry(j, candidates, facts, now)
    states = stored(effects)
    by_customer: dict[str, list[EventView]] = defaultdict(list)
    for e in events:
        by_customer[e.customer_id].append(e)
    result = advance(j, states, by_customer, facts, now, global_cap=global_cap)
    return result.states, [*effects, *result.effects]


@dataclass
class Driver:
    """A minimal service: enroll on trigger events, advance due and evented enrollments,
    keep ``sends_by_day`` from queued messages, tick a fake clock."""

    journey: CompiledJourney
    facts: FakeFacts
    global_cap: FrequencyCap | None = None
    states: dict[int, EnrollmentState] = field(default_factory=dict)
    effects: list[tuple[datetime, Effect]] = field(default_factory=list)
    history: list[dict[int, EnrollmentState]] = field(default_factory=list)
    sends: dict[str, dict[tuple[str, str], int]] = field(default_factory=dict)
    next_id: int = 1

    def tick(self, now: datetime, new_events: Sequence[EventView]) -> None:
        by_customer: dict[str, list[EventView]] = defaultdict(list)
        for e in new_events:
            by_customer[e.customer_id].append(e)
        # 1. enrollments with news, and due ones, advance
        touched = [
            s
            for s in self.states.values()
            if s.state == ACTIVE
            and (s.customer_id in by_customer or (s.wake_at is not None and s.wake_at <= now))
        ]
        self._advance(touched, by_customer, now)
        # 2. entries, then their first advance with the same events
        trigger = getattr(self.journey.spec.trigger, "event", None)
        candidates = []
        for e in sorted(new_events, key=lambda e: (e.at, e.seq)):
            if e.name != trigger:
                continue
            mine = [s for s in self.states.values() if s.customer_id == e.customer_id]
            candidates.append(
                EntryCandidate(
                    e.customer_id,
                    e,
                    active=any(s.state == ACTIVE for s in mine),
                    last_entered_at=max((s.entered_at for s in mine), default=None),
                )
            )
        effects = evaluate_entry(self.journey, candidates, self.facts, now)
        self._record(now, effects)
        new = stored(effects, self.next_id)
        self.next_id += len(new)
        for state in new:
            self.states[state.id] = state
        self._advance(new, by_customer, now)
        self.history.append(dict(self.states))

    def _advance(
        self,
        states: Sequence[EnrollmentState],
        events: Mapping[str, Sequence[EventView]],
        now: datetime,
    ) -> None:
        if not states:
            return
        result = advance(self.journey, states, events, self.facts, now, global_cap=self.global_cap)
        for state in result.states:
            self.states[state.id] = state
        self._record(now, result.effects)

    def _record(self, now: datetime, effects: Sequence[Effect]) -> None:
        for effect in effects:
            self.effects.append((now, effect))
            if isinstance(effect, SendMessage):
                self._count_send(effect.customer_id, effect.send_after)

    def _count_send(self, customer_id: str, at: datetime) -> None:
        facts = self.facts.customer(customer_id)
        day = local_date(at, zone(facts.timezone) or zone("UTC")).isoformat()  # type: ignore[arg-type]
        counts = dict(facts.sends_by_day)
        for key in (self.journey.key, "*"):
            counts[(key, day)] = counts.get((key, day), 0) + 1
        self.facts.customers[customer_id] = replace(facts, sends_by_day=counts)

    def of(self, kind: type[Any]) -> list[Any]:
        return [effect for _, effect in self.effects if isinstance(effect, kind)]


def run_days(
    driver: Driver, events: Sequence[EventView], start: datetime, ticks: int, step: timedelta
) -> None:
    """Feed ``events`` to ``driver`` as the clock moves from ``start`` by ``step``."""
    pending = sorted(events, key=lambda e: (e.at, e.seq))
    now = start
    for _ in range(ticks):
        now += step
        due = [e for e in pending if e.at <= now]
        pending = [e for e in pending if e.at > now]
        driver.tick(now, due)


# A wait for a paid order: thanks if it comes within a day, else a reminder.
WAIT: list[dict[str, Any]] = [
    {
        "id": "bought",
        "type": "wait_for",
        "event": "order.completed",
        "timeout": "1d",
        "where": {"total": {"gt": 0}},
        "on_event": "thanks",
        "on_timeout": "remind",
    },
    {"id": "remind", "type": "send", "message": "remind"},
    {"id": "end", "type": "exit", "reason": "done"},
    {"id": "thanks", "type": "send", "message": "thanks"},
]


# --- helpers for single-enrollment tests ------------------------------------------------

H = timedelta(hours=1)


def kinds(effects: Sequence[Any], kind: type[Any]) -> list[Any]:
    return [e for e in effects if isinstance(e, kind)]


def steps_entered(effects: Sequence[Any]) -> list[str]:
    return [e.step_id for e in kinds(effects, StepEntered)]


def start(
    j: CompiledJourney, facts: FakeFacts | None = None, customer: str = "c1", **props: Any
) -> tuple[EnrollmentState, list[Effect]]:
    """Enter one customer at ``T0`` by ``product.added`` and advance them once."""
    [state], effects = enter_and_advance(
        j, [event("product.added", customer, T0, **props)], facts or FakeFacts(), T0
    )
    return state, effects


def later(
    j: CompiledJourney,
    state: EnrollmentState,
    at: datetime,
    events: list[EventView] | None = None,
    facts: FakeFacts | None = None,
) -> tuple[EnrollmentState, list[Effect]]:
    """Advance one enrollment at ``at`` with some new events."""
    result = advance(j, [state], {state.customer_id: events or []}, facts or FakeFacts(), at)
    return result.states[0], result.effects
