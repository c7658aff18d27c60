"""Which facts a journey's decisions need: declared by the engine, loaded by the runner.

The engine asks its :class:`~omni_journey.engine.types.Facts` about customers (time
zone, attributes, eligibility, recent sends) and conditions (branch arms, the entry
segment, the segments they name). :func:`facts_needed` reads the journey once and says
which of those it can ask, so the runner loads exactly that, in bulk, before it calls
the engine: the engine itself never waits on the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta

from omni_journey.spec.conditions import (
    ORDER_COMPLETED,
    AllCondition,
    AnyCondition,
    AttributeCondition,
    Condition,
    ConsentCondition,
    EventCondition,
    NotCondition,
    PurchasesCondition,
    ReachableCondition,
    SegmentCondition,
)
from omni_journey.spec.models import BranchStep, DelayStep, JourneySpec, SegmentSpec, SendStep

__all__ = ["NO_FACTS", "FactNeeds", "facts_needed"]


@dataclass(frozen=True, slots=True)
class FactNeeds:
    """What to load for a batch.

    ``profiles``: time zone, attributes and channel eligibility; ``sends``: recent sends
    by local day (frequency caps); ``consent``: consent per channel (``consent:``
    conditions); ``event_names``: past events of these names (``event:`` and
    ``purchases:`` conditions), looked back ``lookback`` (``None``: the store's default
    history window).
    """

    profiles: bool = False
    sends: bool = False
    consent: bool = False
    event_names: frozenset[str] = frozenset()
    lookback: timedelta | None = None

    def __or__(self, other: FactNeeds) -> FactNeeds:
        if not self.event_names:
            lookback = other.lookback
        elif not other.event_names:
            lookback = self.lookback
        else:
            lookback = _longest(self.lookback, other.lookback)
        return FactNeeds(
            profiles=self.profiles or other.profiles,
            sends=self.sends or other.sends,
            consent=self.consent or other.consent,
            event_names=self.event_names | other.event_names,
            lookback=lookback,
        )


NO_FACTS = FactNeeds()


def facts_needed(spec: JourneySpec, segments: Mapping[str, SegmentSpec]) -> FactNeeds:
    """Everything ``spec``'s decisions can ask of the facts."""
    needs = NO_FACTS
    if spec.entry.segment is not None:
        needs |= _condition(SegmentCondition(segment=spec.entry.segment), segments)
    for step in spec.steps:
        if isinstance(step, SendStep):
            needs |= FactNeeds(profiles=True, sends=True)
        elif isinstance(step, DelayStep) and step.until is not None:
            needs |= FactNeeds(profiles=True)  # the customer's time zone
        elif isinstance(step, BranchStep):
            for arm in step.arms:
                needs |= _condition(arm.when, segments)
    return needs


def _condition(
    condition: Condition, segments: Mapping[str, SegmentSpec], seen: frozenset[str] = frozenset()
) -> FactNeeds:
    needs = NO_FACTS
    for leaf in _leaves(condition):
        if isinstance(leaf, SegmentCondition):
            segment = segments.get(leaf.segment)
            if segment is not None and leaf.segment not in seen:
                needs |= _condition(segment.match, segments, seen | {leaf.segment})
        elif isinstance(leaf, AttributeCondition | ReachableCondition):
            needs |= FactNeeds(profiles=True)
        elif isinstance(leaf, ConsentCondition):
            needs |= FactNeeds(consent=True)
        elif isinstance(leaf, EventCondition):
            needs |= FactNeeds(event_names=frozenset({leaf.event}), lookback=leaf.within)
        elif isinstance(leaf, PurchasesCondition):
            measures = leaf.purchases
            windows = [measures.within, measures.last_within, measures.none_within]
            counted = measures.count is not None or measures.total is not None
            unbounded = counted and measures.within is None  # counts over all history
            bounded = None if unbounded else _longest_of(w for w in windows if w is not None)
            needs |= FactNeeds(event_names=frozenset({ORDER_COMPLETED}), lookback=bounded)
    return needs


def _leaves(condition: Condition) -> Iterator[Condition]:
    if isinstance(condition, AllCondition):
        for part in condition.all:
            yield from _leaves(part)
    elif isinstance(condition, AnyCondition):
        for part in condition.any:
            yield from _leaves(part)
    elif isinstance(condition, NotCondition):
        yield from _leaves(condition.not_)
    else:
        yield condition


def _longest(a: timedelta | None, b: timedelta | None) -> timedelta | None:
    """The longer look-back; ``None`` (unbounded) wins."""
    if a is None or b is None:
        return None
    return max(a, b)


def _longest_of(windows: Iterable[timedelta]) -> timedelta | None:
    found = list(windows)
    return max(found) if found else None
