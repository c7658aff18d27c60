"""``where`` filters on event properties, as SQL that means what ``match_filters`` means.

A filter maps a property path to a value (equality), a list (any of) or a
:class:`Comparison`. A path with one value (reached through objects only) is tested
directly; through a list it is walked, every value fanned out, and the filter holds when
any value passes. The answers for a missing or null value come from
:func:`omni_journey.engine.match_filters` itself, at compile time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, false, literal, not_, or_, select, true

from omni_journey.engine.filters import match_filters
from omni_journey.segments.json_sql import JsonDialect, JsonValue, any_of, constant, none_of
from omni_journey.spec.conditions import Comparison

__all__ = ["WhereCompiler"]


class WhereCompiler:
    """Compiles one property filter at a time over a JSON document expression."""

    def __init__(self, json: JsonDialect) -> None:
        self.json = json

    def filter(self, doc: ColumnElement[Any], path: str, expected: Any) -> ColumnElement[bool]:
        parts = path.split(".")
        if len(parts) == 1:
            return self._filter_at(doc, parts, expected)
        # a flat key that itself contains dots wins over the nested path
        return case(
            (self.json.has_key(doc, path), self._filter_at(doc, [path], expected)),
            else_=self._filter_at(doc, parts, expected),
        )

    def _filter_at(
        self, doc: ColumnElement[Any], parts: list[str], expected: Any
    ) -> ColumnElement[bool]:
        j = self.json
        single = j.path(doc, parts)
        one_value = self._match_single(single, expected)
        fanned = self._match_walk(doc, parts, expected)
        if len(parts) == 1:
            return case(
                (j.is_missing(single), constant(match_filters({"v": expected}, {}))),
                (j.is_array(single), fanned),
                else_=one_value,
            )
        # a direct path through objects only is one value; through a list, walk
        return case(
            (and_(not_(j.is_missing(single)), not_(j.is_array(single))), one_value),
            else_=fanned,
        )

    def _match_single(self, value: JsonValue, expected: Any) -> ColumnElement[bool]:
        """``match_filters`` when the path holds exactly one value (not a list)."""
        if_null = match_filters({"v": expected}, {"v": None})
        if isinstance(expected, Comparison):
            present = false() if expected.exists is False else self._holds(value, expected)
        elif isinstance(expected, list | tuple):
            present = any_of([self.json.equals(value, o) for o in expected if o is not None])
        elif expected is None:
            present = false()
        else:
            present = self.json.equals(value, expected)
        return case((self.json.is_null(value), constant(if_null)), else_=present)

    def _match_walk(
        self, doc: ColumnElement[Any], parts: list[str], expected: Any
    ) -> ColumnElement[bool]:
        """``match_filters`` over every value at the path, lists fanned out."""
        j = self.json

        def some(
            test: Callable[[JsonValue], ColumnElement[bool]] | None = None,
        ) -> ColumnElement[bool]:
            walk = j.walk(doc, parts)
            query = select(literal(1)).select_from(walk.join_to()).where(walk.where)
            if test is not None:
                query = query.where(test(walk.value))
            return exists(query)

        if isinstance(expected, Comparison):
            tests: list[ColumnElement[bool]] = []
            if expected.exists is True:
                tests.append(some(lambda v: not_(j.is_null(v))))
            elif expected.exists is False:
                tests.append(not_(some(lambda v: not_(j.is_null(v)))))
            ignoring_exists = expected.model_copy(update={"exists": None})
            if_null = match_filters({"v": ignoring_exists}, {"v": None})

            def row(v: JsonValue) -> ColumnElement[bool]:
                return case((j.is_null(v), constant(if_null)), else_=self._holds(v, expected))

            candidate = some(row)
            if if_null:  # no value at all is judged as a single None
                candidate = or_(candidate, not_(some()))
            return and_(*tests, candidate)
        if isinstance(expected, list | tuple):
            null_ok = any(o is None for o in expected)
            options = [o for o in expected if o is not None]
            return some(
                lambda v: case(
                    (j.is_null(v), constant(null_ok)),
                    else_=any_of([j.equals(v, o) for o in options]),
                )
            )
        if expected is None:
            return or_(not_(some()), some(lambda v: j.is_null(v)))
        return some(lambda v: j.equals(v, expected))

    def _holds(self, value: JsonValue, c: Comparison) -> ColumnElement[bool]:
        """``filters._holds`` for a value that is present and not null."""
        j = self.json
        tests: list[ColumnElement[bool]] = []
        if c.eq is not None:
            tests.append(j.equals(value, c.eq))
        if c.ne is not None:
            tests.append(not_(j.equals(value, c.ne)))
        if c.in_ is not None:
            tests.append(any_of([j.equals(value, o) for o in c.in_ if o is not None]))
        if c.not_in is not None:
            tests.append(none_of([j.equals(value, o) for o in c.not_in if o is not None]))
        if c.contains is not None:
            tests.append(j.contains(value, c.contains))
        bounds = (c.gt, c.gte, c.lt, c.lte)
        if any(bound is not None for bound in bounds):
            tests += j.number_tests(value, bounds)
        return and_(true(), *tests)
