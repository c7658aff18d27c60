"""Property filters (``where``): equality, any-of, comparisons, dotted paths into lists."""

from __future__ import annotations

from typing import Any

import pytest

from omni_journey.engine import match_filters
from omni_journey.spec.conditions import Comparison
from omni_journey.spec.models import EventTrigger

ORDER: dict[str, Any] = {
    "total": 80.0,
    "currency": "EUR",
    "coupon": None,
    "gift": False,
    "page.url": "https://shop.example/cart",
    "products": [
        {"sku": "SERUM-30", "category": "skincare", "price": 24.0, "tags": ["new", "vegan"]},
        {"sku": "SHAMPOO", "category": "haircare", "price": 56.0},
    ],
    "shipping": {"country": "DE", "express": True},
}


def where(**filters: Any) -> dict[str, Any]:
    """Filters as the spec parses them from YAML (so ``{gte: 3}`` becomes a Comparison)."""
    return EventTrigger.model_validate({"event": "x", "where": filters}).where


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, True),
        ({"currency": "EUR"}, True),
        ({"currency": "USD"}, False),
        ({"currency": ["USD", "EUR"]}, True),
        ({"currency": ["USD", "GBP"]}, False),
        ({"total": 80}, True),  # 80 == 80.0
        ({"gift": False}, True),
        ({"gift": 0}, False),  # a boolean is not a number
        ({"coupon": None}, True),
        ({"missing": None}, True),
        ({"currency": None}, False),
        ({"shipping.country": "DE"}, True),
        ({"shipping.express": True}, True),
        ({"page.url": "https://shop.example/cart"}, True),  # a flat key with a dot
        ({"products.category": "haircare"}, True),  # any list element
        ({"products.category": "makeup"}, False),
        ({"products.category": ["makeup", "skincare"]}, True),
        ({"products.tags": "vegan"}, True),  # lists inside lists fan out too
        ({"missing": "x"}, False),
        ({"currency": "EUR", "total": 99}, False),  # every filter must hold
    ],
)
def test_equality_and_any_of(filters: dict[str, Any], expected: bool) -> None:
    assert match_filters(where(**filters), ORDER) is expected


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"total": {"gte": 80}}, True),
        ({"total": {"gt": 80}}, False),
        ({"total": {"gt": 50, "lt": 100}}, True),
        ({"total": {"lte": 79.99}}, False),
        ({"currency": {"eq": "EUR"}}, True),
        ({"currency": {"ne": "EUR"}}, False),
        ({"currency": {"in": ["EUR", "USD"]}}, True),
        ({"currency": {"not_in": ["EUR", "USD"]}}, False),
        ({"currency": {"not_in": ["USD"]}}, True),
        ({"missing": {"ne": "x"}}, True),  # absent is "not x"
        ({"missing": {"not_in": ["x"]}}, True),
        ({"missing": {"gte": 0}}, False),  # absent is no number
        ({"currency": {"gte": 0}}, False),  # text is no number
        ({"gift": {"gte": 0}}, False),  # nor is a boolean
        ({"coupon": {"exists": True}}, False),  # null does not exist
        ({"coupon": {"exists": False}}, True),
        ({"currency": {"exists": True}}, True),
        ({"missing": {"exists": False}}, True),
        ({"page.url": {"contains": "/cart"}}, True),
        ({"page.url": {"contains": "/checkout"}}, False),
        ({"total": {"contains": "8"}}, False),  # contains is for text
        ({"products.price": {"gte": 50}}, True),  # some product costs >= 50
        ({"products.price": {"gte": 60}}, False),
        # one element must satisfy every key of the comparison
        ({"products.price": {"gt": 30, "lt": 50}}, False),
        ({"products.price": {"gt": 20, "lt": 30}}, True),
    ],
)
def test_comparisons(filters: dict[str, Any], expected: bool) -> None:
    assert match_filters(where(**filters), ORDER) is expected


def test_comparison_objects_work_directly() -> None:
    assert match_filters({"total": Comparison(gte=10)}, {"total": 12})
    assert not match_filters({"total": Comparison(gte=10)}, {"total": "12"})
