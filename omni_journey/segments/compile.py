"""Segment conditions -> one SQL query of customer ids, on SQLite and PostgreSQL.

Every condition kind becomes a predicate over the outer ``customers`` row:

* ``all`` / ``any`` / ``not`` -> ``AND`` / ``OR`` / ``NOT``; every leaf is two-valued
  (never NULL), so ``NOT`` means "not in the set".
* ``event`` -> ``id IN (SELECT customer_id FROM events WHERE name = … AND at <= :now
  [AND at >= :since] AND <where> [GROUP BY customer_id HAVING count(*) …])``.
* ``purchases`` (RFM) -> ``IN`` / ``NOT IN`` an aggregate over ``order.completed``:
  ``NOT IN`` when a customer with no orders qualifies (``count: {lte: 1}``).
* ``consent`` / ``reachable`` -> :func:`omni_journey.reach.consenting` /
  :func:`omni_journey.reach.reachable`: the SQL form of the same reach rules the
  runner's facts and the dispatcher use (``IN`` / ``EXISTS`` over ``consents``,
  ``identities`` and ``suppressions``).
* ``attribute`` -> a JSON test on ``customers.attributes``.
* ``segment`` -> the referenced segment's condition, inlined (cycles are errors).

``where`` filters and attribute tests follow :func:`omni_journey.engine.match_filters`
exactly; the answers for a missing or null value are computed by that very function at
compile time, so the two can never drift. ``now`` is a parameter: no wall clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    and_,
    case,
    false,
    func,
    not_,
    or_,
    select,
    true,
)

from omni_journey.errors import OmniJourneyError
from omni_journey.reach import consenting, reachable
from omni_journey.segments.facts import _attribute_holds
from omni_journey.segments.json_sql import JsonDialect, any_of, json_dialect, none_of
from omni_journey.segments.where_sql import WhereCompiler
from omni_journey.spec.conditions import (
    ORDER_COMPLETED,
    AllCondition,
    AnyCondition,
    AttributeCondition,
    Condition,
    ConsentCondition,
    EventCondition,
    NotCondition,
    PropertyFilters,
    PurchasesCondition,
    Range,
    ReachableCondition,
    SegmentCondition,
)
from omni_journey.spec.models import SegmentSpec
from omni_journey.store.tables import metadata

__all__ = [
    "ORDER_EVENT",
    "SegmentError",
    "compile_attribute",
    "compile_condition",
    "compile_segment",
    "compile_where",
    "count_members",
    "select_members",
]

ORDER_EVENT = ORDER_COMPLETED

customers: Table = metadata.tables["customers"]
events: Table = metadata.tables["events"]


class SegmentError(OmniJourneyError, ValueError):
    """A segment cannot be compiled: ``code`` is ``unknown-segment``, ``segment-cycle``
    or ``unsupported-name``; ``path`` is the chain of segment keys that led there."""

    def __init__(self, code: str, segment: str, detail: str, path: Sequence[str] = ()) -> None:
        self.code = code
        self.segment = segment
        self.detail = detail
        self.path = tuple(path)
        chain = " -> ".join([*self.path, segment]) if self.path else segment
        super().__init__(f"error[{code}] segment {chain}: {detail}")


def compile_condition(
    condition: Condition,
    *,
    segments: Mapping[str, SegmentSpec],
    now: datetime,
    dialect: str,
    within_segment: Sequence[str] = (),
) -> ColumnElement[bool]:
    """A two-valued predicate over ``customers`` that holds where ``condition`` does."""
    return _Compiler(json_dialect(dialect), segments, now).condition(
        condition, tuple(within_segment)
    )


def compile_where(
    where: PropertyFilters, doc: ColumnElement[Any], *, dialect: str
) -> ColumnElement[bool]:
    """``match_filters(where, properties)`` as SQL over a JSON document expression."""
    compiler = WhereCompiler(json_dialect(dialect))
    tests = []
    for path, expected in where.items():
        for part in path.split("."):
            _check_name(part, "", ())
        tests.append(compiler.filter(doc, path, expected))
    return and_(true(), *tests)


def compile_attribute(
    condition: AttributeCondition, doc: ColumnElement[Any], *, dialect: str
) -> ColumnElement[bool]:
    """An attribute test as SQL over a JSON document expression (a profile's attributes)."""
    return _Compiler(json_dialect(dialect), {}, None).attribute(condition, (), doc)


def compile_segment(
    segment: SegmentSpec, segments: Mapping[str, SegmentSpec], *, now: datetime, dialect: str
) -> Select[tuple[str]]:
    """``SELECT customers.id`` of the segment's members (merged profiles excluded)."""
    predicate = compile_condition(
        segment.match, segments=segments, now=now, dialect=dialect, within_segment=[segment.key]
    )
    return select(customers.c.id).where(customers.c.merged_into.is_(None), predicate)


def select_members(
    connection: Connection,
    segment: SegmentSpec,
    segments: Mapping[str, SegmentSpec],
    *,
    now: datetime,
    limit: int | None = None,
) -> list[str]:
    """The members' ids in id order (the first ``limit`` of them)."""
    query = compile_segment(segment, segments, now=now, dialect=connection.dialect.name)
    query = query.order_by(customers.c.id)
    if limit is not None:
        query = query.limit(limit)
    return [str(customer_id) for customer_id in connection.execute(query).scalars()]


def count_members(
    connection: Connection,
    segment: SegmentSpec,
    segments: Mapping[str, SegmentSpec],
    *,
    now: datetime,
) -> int:
    query = compile_segment(segment, segments, now=now, dialect=connection.dialect.name)
    return int(connection.execute(select(func.count()).select_from(query.subquery())).scalar_one())


def _in_range(value: ColumnElement[Any], bounds: Range) -> list[ColumnElement[bool]]:
    tests: list[ColumnElement[bool]] = []
    if bounds.gt is not None:
        tests.append(value > bounds.gt)
    if bounds.gte is not None:
        tests.append(value >= bounds.gte)
    if bounds.lt is not None:
        tests.append(value < bounds.lt)
    if bounds.lte is not None:
        tests.append(value <= bounds.lte)
    if bounds.eq is not None:
        tests.append(value == bounds.eq)
    return tests


def _check_name(name: str, segment: str, path: Sequence[str]) -> None:
    if '"' in name or "\\" in name:
        raise SegmentError(
            "unsupported-name",
            segment,
            f"property and attribute names may not contain '\"' or '\\\\' ({name!r})",
            path,
        )


class _Compiler:
    def __init__(
        self, json: JsonDialect, segments: Mapping[str, SegmentSpec], now: datetime | None
    ) -> None:
        self.json = json
        self.segments = segments
        self._now = now
        self.where = WhereCompiler(json)

    @property
    def now(self) -> datetime:
        if self._now is None:
            raise TypeError("this condition needs now")
        return self._now

    # --- boolean structure -----------------------------------------------------------

    def condition(self, condition: Condition, stack: tuple[str, ...]) -> ColumnElement[bool]:
        if isinstance(condition, AllCondition):
            return and_(*(self.condition(c, stack) for c in condition.all))
        if isinstance(condition, AnyCondition):
            return or_(*(self.condition(c, stack) for c in condition.any))
        if isinstance(condition, NotCondition):
            return not_(self.condition(condition.not_, stack))
        if isinstance(condition, SegmentCondition):
            return self.segment(condition.segment, stack)
        if isinstance(condition, ConsentCondition):
            return consenting(condition.consent)
        if isinstance(condition, ReachableCondition):
            return reachable(condition.reachable)
        if isinstance(condition, AttributeCondition):
            return self.attribute(condition, stack)
        if isinstance(condition, EventCondition):
            return self.event(condition, stack)
        if isinstance(condition, PurchasesCondition):
            return self.purchases(condition)
        raise TypeError(f"unsupported condition {type(condition).__name__}")

    def segment(self, key: str, stack: tuple[str, ...]) -> ColumnElement[bool]:
        current = stack[-1] if stack else key
        if key in stack:
            raise SegmentError(
                "segment-cycle", key, "segments refer to each other in a loop", stack
            )
        spec = self.segments.get(key)
        if spec is None:
            raise SegmentError(
                "unknown-segment",
                key,
                f"segment {current!r} refers to {key!r}, which does not exist",
                stack,
            )
        return self.condition(spec.match, (*stack, key))

    # --- profile attributes ----------------------------------------------------------

    def attribute(
        self,
        condition: AttributeCondition,
        stack: tuple[str, ...],
        doc: ColumnElement[Any] = customers.c.attributes,
    ) -> ColumnElement[bool]:
        _check_name(condition.attribute, stack[-1] if stack else "", stack[:-1])
        j = self.json
        value = j.member(doc, condition.attribute)
        tests: list[ColumnElement[bool]] = []
        if condition.exists is False:
            tests.append(false())
        if condition.equals is not None:
            tests.append(j.equals(value, condition.equals))
        if condition.not_equals is not None:
            tests.append(not_(j.equals(value, condition.not_equals)))
        if condition.in_ is not None:
            tests.append(any_of([j.equals(value, o) for o in condition.in_ if o is not None]))
        if condition.not_in is not None:
            tests.append(none_of([j.equals(value, o) for o in condition.not_in if o is not None]))
        bounds = (condition.gt, condition.gte, condition.lt, condition.lte)
        if any(bound is not None for bound in bounds):
            tests += j.number_tests(value, bounds)
        # Missing and null are decided here, in Python; plain AND / OR (no CASE) lets
        # the database stop at the first cheap test. Each branch stays two-valued: the
        # tests are only NULL when the value is missing, and then the guard decides.
        absent = or_(j.is_missing(value), j.is_null(value))
        if _attribute_holds(condition, {}):
            return or_(absent, and_(true(), *tests))
        needs_value = (
            condition.equals is not None
            or any(o is not None for o in condition.in_ or ())
            or any(bound is not None for bound in bounds)
        )
        if needs_value:  # such a test is never true without a value: NULL -> false will do
            return func.coalesce(and_(*tests), false())
        return and_(*tests, not_(absent)) if tests else not_(absent)

    # --- behaviour -------------------------------------------------------------------

    def event(self, condition: EventCondition, stack: tuple[str, ...]) -> ColumnElement[bool]:
        ev = events.alias()
        where: list[ColumnElement[bool]] = [ev.c.name == condition.event, ev.c.at <= self.now]
        if condition.within is not None:
            where.append(ev.c.at >= self.now - condition.within)
        for path, expected in condition.where.items():
            for part in path.split("."):
                _check_name(part, stack[-1] if stack else "", stack[:-1])
            where.append(self.where.filter(ev.c.properties, path, expected))
        matching = select(ev.c.customer_id).where(*where)
        if condition.at_least > 1 or condition.at_most is not None:
            having = [func.count() >= condition.at_least]
            if condition.at_most is not None:
                having.append(func.count() <= condition.at_most)
            matching = matching.group_by(ev.c.customer_id).having(and_(*having))
        return customers.c.id.in_(matching)

    def purchases(self, condition: PurchasesCondition) -> ColumnElement[bool]:
        measures = condition.purchases
        ev = events.alias()
        last = func.max(ev.c.at)
        if measures.within is not None:
            in_window = ev.c.at >= self.now - measures.within
            count: ColumnElement[Any] = func.count(case((in_window, 1)))
            amount: ColumnElement[Any] = case(
                (in_window, self.json.number_at(ev.c.properties, "total"))
            )
        else:
            count = func.count()
            amount = self.json.number_at(ev.c.properties, "total")
        total = func.coalesce(func.sum(amount), 0)
        tests: list[ColumnElement[bool]] = []
        if measures.last_within is not None:
            tests.append(last >= self.now - measures.last_within)
        if measures.none_within is not None:
            tests.append(last < self.now - measures.none_within)
        if measures.count is not None:
            tests += _in_range(count, measures.count)
        if measures.total is not None:
            tests += _in_range(total, measures.total)
        if not tests:
            return true()
        # What a customer without a single order gets: decided here, in Python.
        no_orders = (
            measures.last_within is None
            and (measures.count is None or _range_holds(0, measures.count))
            and (measures.total is None or _range_holds(0, measures.total))
        )
        orders = (
            select(ev.c.customer_id)
            .where(ev.c.name == ORDER_EVENT, ev.c.at <= self.now)
            .group_by(ev.c.customer_id)
        )
        if no_orders:
            return customers.c.id.not_in(orders.having(not_(and_(*tests))))
        return customers.c.id.in_(orders.having(and_(*tests)))


def _range_holds(value: float, bounds: Range) -> bool:
    return (
        (bounds.gt is None or value > bounds.gt)
        and (bounds.gte is None or value >= bounds.gte)
        and (bounds.lt is None or value < bounds.lt)
        and (bounds.lte is None or value <= bounds.lte)
        and (bounds.eq is None or value == bounds.eq)
    )
