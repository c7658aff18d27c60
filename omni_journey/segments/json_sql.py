"""JSON values in SQL, written once for SQLite (JSON1) and PostgreSQL (JSONB).

The segment compiler asks three things of a JSON document column: the value at a
top-level key, the value at a dotted path through objects, and every value at a path
when lists fan out (``products.category``: any product's category). Each answer is a
:class:`JsonValue`: an expression for the value's JSON type and one for the value, with
tests that keep JSON's types apart exactly as :func:`omni_journey.engine.match_filters`
does (``true`` is not ``1``; ``1`` equals ``1.0``; ``"1"`` is not ``1``).

SQLite walks lists with ``json_tree`` (any depth); PostgreSQL with a lax ``jsonpath``
that unwraps lists nested up to four deep.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Float,
    FromClause,
    String,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB, JSONPATH

__all__ = [
    "Bounds",
    "JsonDialect",
    "JsonValue",
    "Walk",
    "any_of",
    "constant",
    "json_dialect",
    "none_of",
]

_PG_UNWRAP = "[*]" * 4


@dataclass(frozen=True)
class JsonValue:
    """A JSON value in SQL: ``type`` is NULL when the value is missing."""

    type: ColumnElement[Any]
    data: ColumnElement[Any]


@dataclass(frozen=True)
class Walk:
    """Every value at a path, lists fanned out: FROM items (each may refer to the ones
    before it), the value and the filter."""

    sources: tuple[FromClause, ...]
    value: JsonValue
    where: ColumnElement[bool]

    def join_to(self, left: FromClause | None = None) -> FromClause:
        """A flat ``left JOIN s1 ON .. JOIN s2 ON ..`` (SQLite cannot see into a nested join)."""
        joined = left
        for source in self.sources:
            joined = source if joined is None else joined.join(source, true())
        assert joined is not None
        return joined


class JsonDialect(Protocol):
    name: str

    def member(self, doc: ColumnElement[Any], key: str) -> JsonValue: ...

    def path(self, doc: ColumnElement[Any], parts: list[str]) -> JsonValue: ...

    def has_key(self, doc: ColumnElement[Any], key: str) -> ColumnElement[bool]: ...

    def walk(self, doc: ColumnElement[Any], parts: list[str]) -> Walk: ...

    def is_missing(self, value: JsonValue) -> ColumnElement[bool]: ...

    def is_null(self, value: JsonValue) -> ColumnElement[bool]: ...

    def is_array(self, value: JsonValue) -> ColumnElement[bool]: ...

    def equals(self, value: JsonValue, expected: Any) -> ColumnElement[bool]: ...

    def number(self, value: JsonValue) -> ColumnElement[Any]: ...

    def number_tests(self, value: JsonValue, bounds: Bounds) -> list[ColumnElement[bool]]: ...

    def contains(self, value: JsonValue, text: str) -> ColumnElement[bool]: ...

    def number_at(self, doc: ColumnElement[Any], key: str) -> ColumnElement[Any]: ...


Bounds = tuple[float | None, float | None, float | None, float | None]  # gt, gte, lt, lte


def _bounded(number: ColumnElement[Any], bounds: Bounds) -> list[ColumnElement[bool]]:
    gt, gte, lt, lte = bounds
    tests: list[ColumnElement[bool]] = []
    if gt is not None:
        tests.append(number > gt)
    if gte is not None:
        tests.append(number >= gte)
    if lt is not None:
        tests.append(number < lt)
    if lte is not None:
        tests.append(number <= lte)
    return tests


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _SQLiteJson:
    name = "sqlite"

    @staticmethod
    def _path(parts: list[str]) -> str:
        return "$" + "".join(f'."{part}"' for part in parts)

    def member(self, doc: ColumnElement[Any], key: str) -> JsonValue:
        return self.path(doc, [key])

    def path(self, doc: ColumnElement[Any], parts: list[str]) -> JsonValue:
        path = self._path(parts)
        return JsonValue(func.json_type(doc, path), func.json_extract(doc, path))

    def has_key(self, doc: ColumnElement[Any], key: str) -> ColumnElement[bool]:
        return func.json_type(doc, self._path([key])).is_not(None)

    def walk(self, doc: ColumnElement[Any], parts: list[str]) -> Walk:
        # Each level: the member's JSON text (``->``), then json_tree over it keeping the
        # nodes reached through list indexes only (no "." in fullkey) that are not lists.
        sources: list[FromClause] = []
        where: list[ColumnElement[bool]] = []
        previous: Any = None
        for part in parts:
            step = literal(self._path([part]))
            text: ColumnElement[Any]
            if previous is None:
                text = doc.op("->", return_type=String)(step)
            else:
                text = case(
                    (
                        previous.c.type == "object",
                        previous.c.value.op("->", return_type=String)(step),
                    )
                )
            tree = func.json_tree(text).table_valued("type", "atom", "value", "fullkey")
            where += [func.instr(tree.c.fullkey, ".") == 0, tree.c.type != "array"]
            sources.append(tree)
            previous = tree
        assert previous is not None
        return Walk(tuple(sources), JsonValue(previous.c.type, previous.c.atom), and_(*where))

    def is_missing(self, value: JsonValue) -> ColumnElement[bool]:
        return value.type.is_(None)

    def is_null(self, value: JsonValue) -> ColumnElement[bool]:
        return value.type == "null"

    def is_array(self, value: JsonValue) -> ColumnElement[bool]:
        return value.type == "array"

    def equals(self, value: JsonValue, expected: Any) -> ColumnElement[bool]:
        if expected is None:
            return self.is_null(value)
        if isinstance(expected, bool):
            return value.type == ("true" if expected else "false")
        # the value first: it rejects most rows without looking at the type
        if _is_number(expected):
            return and_(value.data == float(expected), value.type.in_(("integer", "real")))
        if isinstance(expected, str):
            return and_(value.data == expected, value.type == "text")
        return false()

    def number(self, value: JsonValue) -> ColumnElement[Any]:
        return case((value.type.in_(("integer", "real")), value.data))

    def number_tests(self, value: JsonValue, bounds: Bounds) -> list[ColumnElement[bool]]:
        # compare first (cheap, rejects most rows), then make sure it was a number: text
        # sorts above numbers in SQLite, and true / false come out as 1 / 0
        return [*_bounded(value.data, bounds), value.type.in_(("integer", "real"))]

    def contains(self, value: JsonValue, text: str) -> ColumnElement[bool]:
        return and_(value.type == "text", func.instr(value.data, text) > 0)

    def number_at(self, doc: ColumnElement[Any], key: str) -> ColumnElement[Any]:
        return self.number(self.member(doc, key))


class _PostgresJson:
    name = "postgresql"

    @staticmethod
    def _value(data: ColumnElement[Any]) -> JsonValue:
        return JsonValue(func.jsonb_typeof(data), data)

    def member(self, doc: ColumnElement[Any], key: str) -> JsonValue:
        return self._value(doc.op("->", return_type=JSONB)(literal(key, String)))

    def path(self, doc: ColumnElement[Any], parts: list[str]) -> JsonValue:
        data = doc
        for part in parts:
            data = data.op("->", return_type=JSONB)(literal(part, String))
        return self._value(data)

    def has_key(self, doc: ColumnElement[Any], key: str) -> ColumnElement[bool]:
        return doc.op("?", return_type=Boolean)(literal(key, String))

    def walk(self, doc: ColumnElement[Any], parts: list[str]) -> Walk:
        # lax mode: a member accessor on a list looks inside it; [*] on a non-list is
        # the value itself, so repeating it flattens nested lists.
        path = "lax $" + "".join(
            f".{json.dumps(part, ensure_ascii=False)}{_PG_UNWRAP}" for part in parts
        )
        rows = (
            func.jsonb_path_query(doc, cast(literal(path, String), JSONPATH))
            .table_valued("value")
            .render_derived()
        )
        return Walk((rows,), self._value(rows.c.value), true())

    def is_missing(self, value: JsonValue) -> ColumnElement[bool]:
        return value.data.is_(None)

    def is_null(self, value: JsonValue) -> ColumnElement[bool]:
        return value.type == "null"

    def is_array(self, value: JsonValue) -> ColumnElement[bool]:
        return value.type == "array"

    def equals(self, value: JsonValue, expected: Any) -> ColumnElement[bool]:
        if expected is None:
            return self.is_null(value)
        if isinstance(expected, bool | str) or _is_number(expected):
            # jsonb equality keeps types apart and compares numbers as numbers
            return value.data == cast(literal(json.dumps(expected), String), JSONB)
        return false()

    def number(self, value: JsonValue) -> ColumnElement[Any]:
        return case((value.type == "number", cast(value.data, Float)))

    def number_tests(self, value: JsonValue, bounds: Bounds) -> list[ColumnElement[bool]]:
        # jsonb orders numbers numerically and keeps other types apart: no cast, no CASE
        gt, gte, lt, lte = (
            None if b is None else cast(literal(json.dumps(b), String), JSONB) for b in bounds
        )
        tests: list[ColumnElement[bool]] = [value.type == "number"]
        if gt is not None:
            tests.append(value.data > gt)
        if gte is not None:
            tests.append(value.data >= gte)
        if lt is not None:
            tests.append(value.data < lt)
        if lte is not None:
            tests.append(value.data <= lte)
        return tests

    def contains(self, value: JsonValue, text: str) -> ColumnElement[bool]:
        as_text = value.data.op("#>>", return_type=String)(literal_column("'{}'"))
        return and_(value.type == "string", func.strpos(as_text, text) > 0)

    def number_at(self, doc: ColumnElement[Any], key: str) -> ColumnElement[Any]:
        return self.number(self.member(doc, key))


_DIALECTS: dict[str, JsonDialect] = {"sqlite": _SQLiteJson(), "postgresql": _PostgresJson()}


def json_dialect(name: str) -> JsonDialect:
    """The JSON helpers for a SQLAlchemy dialect name (``sqlite`` or ``postgresql``)."""
    try:
        return _DIALECTS[name]
    except KeyError:
        raise ValueError(f"segments compile for sqlite or postgresql, not {name!r}") from None


def constant(value: bool) -> ColumnElement[bool]:
    """SQL true or false."""
    return true() if value else false()


def any_of(conditions: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    """OR of ``conditions``; false when there are none."""
    return or_(*conditions) if conditions else false()


def none_of(conditions: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    return not_(any_of(conditions)) if conditions else true()
