"""Facts for a batch of customers, loaded with a few set-based queries.

:class:`BatchFacts` implements the engine's ``Facts`` protocol: what the engine may
know of each customer (time zone, attributes, channel eligibility, recent sends) and
the answers to the conditions a journey asks (branch arms, entry segments).

Channel eligibility is :mod:`omni_journey.reach`'s SQL verdict, selected with the
profiles: the same rules the segment compiler's ``reachable`` and the dispatcher use.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, and_, select

from omni_journey.engine import NO_FACTS, FactNeeds, match_filters
from omni_journey.engine.types import CustomerFacts
from omni_journey.reach import UNREACHABLE, eligibility_columns, eligibility_from_row, has_consent
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
from omni_journey.store.core import CONSENTS, CUSTOMERS, EVENTS, MESSAGES

__all__ = ["ALL_FACTS", "BatchFacts", "load_facts"]

_CHUNK = 500
_HISTORY_EVENTS_LIMIT_DAYS = 400
_ANY_EVENT = frozenset({"*"})
# What CustomerFacts takes from a profile (the rest of the row costs reading for nothing).
_PROFILE_COLUMNS = (CUSTOMERS.c.id, CUSTOMERS.c.timezone, CUSTOMERS.c.attributes)
# Everything, for callers that do not declare what they need (tests, analytics).
ALL_FACTS = FactNeeds(profiles=True, sends=True, consent=True, event_names=_ANY_EVENT)


def _chunks(items: Sequence[str], size: int = _CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


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
    ids = sorted(set(customer_ids))
    profiles: dict[str, Any] = {}
    consent: dict[str, dict[str, bool]] = defaultdict(dict)
    sends: dict[str, list[tuple[str | None, datetime]]] = defaultdict(list)
    events: dict[str, list[tuple[str, datetime, Mapping[str, Any]]]] = defaultdict(list)
    lookback = needs.lookback if needs.event_names != _ANY_EVENT else None
    since = now - (history or lookback or timedelta(days=_HISTORY_EVENTS_LIMIT_DAYS))
    for chunk in _chunks(ids) if needs != NO_FACTS else ():
        if needs.profiles:
            profile_rows = connection.execute(
                select(*_PROFILE_COLUMNS, *eligibility_columns()).where(CUSTOMERS.c.id.in_(chunk))
            )
            for row in profile_rows:
                profiles[row.id] = row
        if needs.consent:
            rows = connection.execute(select(CONSENTS).where(CONSENTS.c.customer_id.in_(chunk)))
            for row in rows:
                consent[row.customer_id][row.channel] = row.granted
        if needs.sends:
            send_rows = connection.execute(
                select(MESSAGES.c.customer_id, MESSAGES.c.journey_key, MESSAGES.c.send_after).where(
                    and_(
                        MESSAGES.c.customer_id.in_(chunk),
                        MESSAGES.c.send_after >= now - cap_window,
                        MESSAGES.c.status.in_(("pending", "claimed", "sent")),
                        MESSAGES.c.channel != "webhook",
                    )
                )
            )
            for send in send_rows:
                sends[send.customer_id].append((send.journey_key, send.send_after))
        if needs.event_names:
            wanted = [EVENTS.c.customer_id.in_(chunk), EVENTS.c.at >= since]
            if needs.event_names != _ANY_EVENT:
                wanted.append(EVENTS.c.name.in_(sorted(needs.event_names)))
            event_rows = connection.execute(
                select(EVENTS.c.customer_id, EVENTS.c.name, EVENTS.c.at, EVENTS.c.properties)
                .where(and_(*wanted))
                .order_by(EVENTS.c.customer_id, EVENTS.c.at)
            )
            for event in event_rows:
                events[event.customer_id].append((event.name, event.at, event.properties or {}))
    facts: dict[str, CustomerFacts] = {}
    for customer_id in ids if needs.profiles or needs.sends else ():
        profile = profiles.get(customer_id)
        zone = _zone(profile.timezone if profile else None)
        by_day: dict[tuple[str, str], int] = defaultdict(int)
        for journey_key, at in sends.get(customer_id, ()):
            day = at.astimezone(zone).date().isoformat()
            by_day[("*", day)] += 1
            if journey_key:
                by_day[(journey_key, day)] += 1
        facts[customer_id] = CustomerFacts(
            customer_id=customer_id,
            timezone=zone.key,
            attributes=dict(profile.attributes or {}) if profile else {},
            eligible=(
                eligibility_from_row(profile) if profile else dict.fromkeys(CHANNELS, UNREACHABLE)
            ),
            sends_by_day=dict(by_day),
        )
    return BatchFacts(facts, consent, events, segments, now)
