"""Property filters (``where``) on event properties.

``where`` maps a property path to what it must be::

    category: skincare                   equality
    category: [skincare, haircare]       any of
    price: {gte: 20, lt: 100}            a Comparison: every key must hold
    products.category: skincare          a dotted path: any list element may match

A path walks nested mappings; a list met on the way fans out to its elements, so
``products.category`` matches when any product's category matches. A flat key that
itself contains dots (``"page.url"``) is looked up as-is first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omni_journey.spec.conditions import Comparison, PropertyFilters

__all__ = ["match_filters", "resolve_path"]

_MISSING = object()


def match_filters(where: PropertyFilters, properties: Mapping[str, Any]) -> bool:
    """Whether ``properties`` satisfies every filter in ``where`` (an empty ``where`` does)."""
    return all(
        _match_one(expected, resolve_path(properties, path)) for path, expected in where.items()
    )


def resolve_path(properties: Mapping[str, Any], path: str) -> list[Any]:
    """Every value at ``path`` (lists fan out); empty when the path is absent."""
    if path in properties:
        return _flatten(properties[path])
    found: list[Any] = [properties]
    for part in path.split("."):
        step: list[Any] = []
        for value in found:
            for item in _flatten(value):
                if isinstance(item, Mapping) and part in item:
                    step.append(item[part])
        found = step
    return [value for item in found for value in _flatten(item)]


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list | tuple):
        return [inner for item in value for inner in _flatten(item)]
    return [value]


def _match_one(expected: Comparison | Any, values: list[Any]) -> bool:
    if isinstance(expected, Comparison):
        return _compare(expected, values)
    if isinstance(expected, list | tuple):
        return any(_equal(value, option) for value in values for option in expected)
    if expected is None:
        return not values or any(value is None for value in values)
    return any(_equal(value, expected) for value in values)


def _compare(comparison: Comparison, values: list[Any]) -> bool:
    present = [value for value in values if value is not None]
    if comparison.exists is not None and bool(present) != comparison.exists:
        return False
    # A missing property is "None" for the negative tests (ne, not_in), and fails the rest.
    candidates = values or [None]
    return any(_holds(comparison, value) for value in candidates)


def _holds(c: Comparison, value: Any) -> bool:
    if c.eq is not None and not _equal(value, c.eq):
        return False
    if c.ne is not None and _equal(value, c.ne):
        return False
    if c.in_ is not None and not any(_equal(value, option) for option in c.in_):
        return False
    if c.not_in is not None and any(_equal(value, option) for option in c.not_in):
        return False
    if c.contains is not None and not (isinstance(value, str) and c.contains in value):
        return False
    bounds = (c.gt, c.gte, c.lt, c.lte)
    if all(bound is None for bound in bounds):
        return True
    if not _is_number(value):
        return False
    number = float(value)
    return (
        (c.gt is None or number > c.gt)
        and (c.gte is None or number >= c.gte)
        and (c.lt is None or number < c.lt)
        and (c.lte is None or number <= c.lte)
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(value: Any, expected: Any) -> bool:
    """Equality that keeps booleans apart from numbers (``True`` is not ``1``)."""
    if isinstance(value, bool) or isinstance(expected, bool):
        return isinstance(value, bool) and isinstance(expected, bool) and value == expected
    if _is_number(value) and _is_number(expected):
        return float(value) == float(expected)
    return type(value) is type(expected) and bool(value == expected)
