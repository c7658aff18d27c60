"""Facts for a batch of customers, loaded with a few set-based queries.

:class:`BatchFacts` implements the engine's ``Facts`` protocol: what the engine may
know of each customer (time zone, attributes, channel eligibility, recent sends) and
the answers to the conditions a journey asks (branch arms, entry segments).

Channel eligibility is :mod:`omni_journey.reach`'s SQL verdict, selected with the
profiles: the same rules the segment compiler's ``reachable`` and the dispatcher use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from omni_journey.engine import NO_FACTS, FactNeeds, match_filters
from omni_journey.engine.types import CustomerFacts
from omni_journey.reach import UNREACHABLE, has_consent
from omni_journey.segments.fact_loads import (
    ANY_EVENT,
    History,
    customer_facts,
    load_consent,
    load_events,
    load_profiles,
    load_sends,
)
from omni_journey.spec.conditions import (
    CHANNELS,
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
from omni_journey.spec.models import SegmentSpec

__all__ = ["ALL_FACTS", "BatchFacts", "history_since", "load_facts"]

_HISTORY_EVENTS_LIMIT_DAYS = 400
# Everything, for callers that do not declare what they need (tests, analytics).
ALL_FACTS = FactNeeds(profiles=True, sends=True, consent=True, event_names=ANY_EVENT)


class BatchFacts:
    """Everything the engine asks about a batch of customers, answered from memory."""

    def __init__(
        self,
        customers: Mapping[str, CustomerFacts],
        consent: Mapping[str, Mapping[str, bool]],
        events: Mapping[str, Sequence[tuple[str, datetime, Mapping[str, Any]]]],
        segments: Mapping[str, SegmentSpec],
        now: datetime,
    ) -> None:
        self._customers = customers
        self._consent = consent
        self._events = events
        self._segments = segments
        self._now = now

    def customer(self, customer_id: str) -> CustomerFacts:
        return self._customers.get(customer_id) or CustomerFacts(
            customer_id=customer_id, eligible=dict.fromkeys(CHANNELS, UNREACHABLE)
        )

    def in_segment(self, segment_key: str, customer_id: str) -> bool:
        segment = self._segments.get(segment_key)
        if segment is None:
            return False
        return self.holds(segment.match, customer_id)

    def holds(self, condition: Condition, customer_id: str) -> bool:
        if isinstance(condition, AllCondition):
            return all(self.holds(c, customer_id) for c in condition.all)
        if isinstance(condition, AnyCondition):
            return any(self.holds(c, customer_id) for c in condition.any)
        if isinstance(condition, NotCondition):
            return not self.holds(condition.not_, customer_id)
        if isinstance(condition, SegmentCondition):
            return self.in_segment(condition.segment, customer_id)
        if isinstance(condition, ConsentCondition):
            return has_consent(self._consent.get(customer_id, {}), condition.consent)
        if isinstance(condition, ReachableCondition):
            return self.customer(customer_id).eligible.get(condition.reachable) is None
        if isinstance(condition, AttributeCondition):
            return _attribute_holds(condition, self.customer(customer_id).attributes)
        if isinstance(condition, EventCondition):
            return self._event_holds(condition, customer_id)
        if isinstance(condition, PurchasesCondition):
            return self._purchases_hold(condition, customer_id)
        raise TypeError(f"unsupported condition {type(condition).__name__}")

    def _event_holds(self, condition: EventCondition, customer_id: str) -> bool:
        since = self._now - condition.within if condition.within else None
        count = sum(
            1
            for name, at, properties in self._events.get(customer_id, ())
            if name == condition.event
            and at <= self._now
            and (since is None or at >= since)
            and match_filters(condition.where, properties)
        )
        if count < condition.at_least:
            return False
        return condition.at_most is None or count <= condition.at_most

    def _purchases_hold(self, condition: PurchasesCondition, customer_id: str) -> bool:
        measures = condition.purchases
        orders = [
            (at, properties)
            for name, at, properties in self._events.get(customer_id, ())
            if name == "order.completed" and at <= self._now
        ]
        last = max((at for at, _ in orders), default=None)
        if measures.last_within and (last is None or last < self._now - measures.last_within):
            return False
        if measures.none_within and last is not None and last >= self._now - measures.none_within:
            return False
        window = [
            (at, p) for at, p in orders if not measures.within or at >= self._now - measures.within
        ]
        if measures.count and not _in_range(len(window), measures.count):
            return False
        total = sum(_number(p.get("total")) for _, p in window)
        return not (measures.total and not _in_range(total, measures.total))


def _in_range(value: float, bounds: Any) -> bool:
    eq = getattr(bounds, "eq", None)  # an AttributeCondition has gt/gte/lt/lte but no eq
    return (
        (bounds.gt is None or value > bounds.gt)
        and (bounds.gte is None or value >= bounds.gte)
        and (bounds.lt is None or value < bounds.lt)
        and (bounds.lte is None or value <= bounds.lte)
        and (eq is None or value == eq)
    )


def _number(value: Any) -> float:
    """An order total as a number; anything that is not one (text, bool, null) counts 0."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _same(value: Any, expected: Any) -> bool:
    """Equality as ``match_filters`` has it: ``True`` is not ``1``, ``1`` is ``1.0``."""
    if isinstance(value, bool) or isinstance(expected, bool):
        return isinstance(value, bool) and isinstance(expected, bool) and value == expected
    numbers = (value, expected)
    if all(isinstance(v, int | float) for v in numbers):
        return float(value) == float(expected)
    return type(value) is type(expected) and bool(value == expected)


def _attribute_holds(condition: AttributeCondition, attributes: Mapping[str, Any]) -> bool:
    present = condition.attribute in attributes and attributes[condition.attribute] is not None
    if condition.exists is not None and present != condition.exists:
        return False
    value = attributes.get(condition.attribute)
    if condition.equals is not None and not _same(value, condition.equals):
        return False
    if condition.not_equals is not None and _same(value, condition.not_equals):
        return False
    if condition.in_ is not None and not any(_same(value, o) for o in condition.in_):
        return False
    if condition.not_in is not None and any(_same(value, o) for o in condition.not_in):
        return False
    numeric = (condition.gt, condition.gte, condition.lt, condition.lte)
    if any(bound is not None for bound in numeric):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return _in_range(float(value), condition)  # AttributeCondition has gt/gte/lt/lte
    return True


def load_facts(
    connection: Connection,
    customer_ids: Sequence[str],
    *,
    now: datetime,
    segments: Mapping[str, SegmentSpec],
    cap_window: timedelta = timedelta(days=8),
    history: timedelta | None = None,
    needs: FactNeeds = ALL_FACTS,
) -> BatchFacts:
    """Load what the engine declared it ``needs`` for ``customer_ids``, in a handful of
    queries per chunk of customers (everything when ``needs`` is not given)."""
    ids = sorted(set(customer_ids)) if needs != NO_FACTS else []
    profiles = load_profiles(connection, ids) if needs.profiles else {}
    consent = load_consent(connection, ids) if needs.consent else {}
    sends = load_sends(connection, ids, now - cap_window) if needs.sends else {}
    events: Mapping[str, History] = {}
    if needs.event_names:
        events = load_events(connection, ids, needs.event_names, history_since(needs, now, history))
    facts = {
        customer_id: customer_facts(customer_id, profiles.get(customer_id), sends.get(customer_id))
        for customer_id in (ids if needs.profiles or needs.sends else ())
    }
    return BatchFacts(facts, consent, events, segments, now)


def history_since(needs: FactNeeds, now: datetime, history: timedelta | None = None) -> datetime:
    """How far back ``needs``' event history is read: ``history`` when given, else the
    declared look-back, else the store's default window."""
    lookback = needs.lookback if needs.event_names != ANY_EVENT else None
    return now - (history or lookback or timedelta(days=_HISTORY_EVENTS_LIMIT_DAYS))
