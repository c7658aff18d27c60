"""Property filters in SQL agree with ``match_filters`` on any document, on both databases.

The filter runs over a literal JSON document (no table), so hypothesis can try thousands
of documents and filters cheaply: nested objects and lists, JSON null, booleans next to
numbers, numbers written as int and float, flat keys that contain dots.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, String, cast, create_engine, literal, select
from sqlalchemy.dialects.postgresql import JSONB

from omni_journey.engine.filters import match_filters
from omni_journey.segments.compile import compile_attribute, compile_where
from omni_journey.segments.facts import _attribute_holds
from omni_journey.spec.conditions import AttributeCondition, Comparison

KEYS = ["a", "b", "a.b"]
PATHS = ["a", "b", "a.b", "b.a", "a.b.a"]
# A small vocabulary, so that true meets 1, 1 meets 1.0 and "1" meets 1 often.
SCALARS = [None, True, False, 0, 1, 1.0, 1.5, "1", "x", "xy", "", "[]"]
scalars = st.sampled_from(SCALARS)


def values(depth: int) -> st.SearchStrategy[Any]:
    if depth == 0:
        return scalars
    inner = values(depth - 1)
    return st.one_of(
        scalars,
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=2),
    )


documents = st.dictionaries(st.sampled_from(KEYS), values(4), max_size=3)
comparisons = st.builds(
    Comparison,
    eq=st.one_of(st.none(), scalars),
    ne=st.one_of(st.none(), scalars),
    in_=st.one_of(st.none(), st.tuples(scalars, scalars)),
    not_in=st.one_of(st.none(), st.tuples(scalars)),
    gt=st.one_of(st.none(), st.sampled_from([-1.0, 0.0, 1.0])),
    gte=st.one_of(st.none(), st.sampled_from([0.0, 1.5])),
    lt=st.one_of(st.none(), st.sampled_from([1.0, 2.0])),
    lte=st.one_of(st.none(), st.sampled_from([1.0])),
    exists=st.one_of(st.none(), st.booleans()),
    contains=st.one_of(st.none(), st.sampled_from(["", "x", "y"])),
)
expected_values = st.one_of(scalars, st.tuples(scalars, scalars), comparisons)
filters = st.dictionaries(st.sampled_from(PATHS), expected_values, min_size=1, max_size=2)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def connection(request: pytest.FixtureRequest) -> Iterator[Connection]:
    url = "sqlite://" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    with engine.connect() as conn:
        yield conn
    engine.dispose()


def _doc(connection: Connection, document: dict[str, Any]) -> Any:
    text = literal(json.dumps(document), String)
    return cast(text, JSONB) if connection.dialect.name == "postgresql" else text


def sql_matches(connection: Connection, where: dict[str, Any], document: dict[str, Any]) -> bool:
    predicate = compile_where(where, _doc(connection, document), dialect=connection.dialect.name)
    positive, negative = connection.execute(select(predicate, ~predicate)).one()
    assert bool(positive) != bool(negative), "the predicate must never be NULL"
    return bool(positive)


def sql_attribute(
    connection: Connection, condition: AttributeCondition, attributes: dict[str, Any]
) -> bool:
    doc = _doc(connection, attributes)
    predicate = compile_attribute(condition, doc, dialect=connection.dialect.name)
    # twice, and under NOT: a NULL anywhere would show up as a disagreement
    positive, negative = connection.execute(select(predicate, ~predicate)).one()
    assert bool(positive) != bool(negative), "the predicate must never be NULL"
    return bool(positive)


@settings(
    max_examples=700,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(where=filters, document=documents)
def test_sql_filters_agree_with_match_filters(
    connection: Connection, where: dict[str, Any], document: dict[str, Any]
) -> None:
    assert sql_matches(connection, where, document) == match_filters(where, document)


EXAMPLES = [
    ({"products.category": "tea"}, {"products": [{"category": "coffee"}, {"category": "tea"}]}),
    ({"products.category": "tea"}, {"products": [[{"category": "tea"}]]}),
    ({"page.url": "/x"}, {"page.url": "/x", "page": {"url": "/y"}}),
    ({"page.url": "/y"}, {"page.url": "/x", "page": {"url": "/y"}}),
    ({"price": {"gte": 20, "lt": 30}}, {"price": [10, 40]}),
    ({"price": {"gte": 20, "lt": 30}}, {"price": [10, 25]}),
    ({"flag": 1}, {"flag": True}),
    ({"flag": True}, {"flag": True}),
    ({"n": 2}, {"n": 2.0}),
    ({"n": "2"}, {"n": 2}),
    ({"coupon": None}, {}),
    ({"coupon": None}, {"coupon": None}),
    ({"coupon": None}, {"coupon": "X"}),
    ({"coupon": {"exists": False}}, {"coupon": None}),
    ({"coupon": {"ne": "X"}}, {}),
    ({"coupon": {"not_in": ["X"]}}, {"coupon": ["X", "Y"]}),
    ({"name": {"contains": "ser"}}, {"name": "Serum"}),
    ({"name": {"contains": "Ser"}}, {"name": "Serum"}),
]


@pytest.mark.parametrize(("where", "document"), EXAMPLES)
def test_worked_examples(
    connection: Connection, where: dict[str, Any], document: dict[str, Any]
) -> None:
    parsed = {
        k: Comparison.model_validate(v) if isinstance(v, dict) else v for k, v in where.items()
    }
    assert sql_matches(connection, parsed, document) == match_filters(parsed, document)


@st.composite
def attribute_conditions(draw: st.DrawFn) -> AttributeCondition:
    fields: dict[str, Any] = {"attribute": draw(st.sampled_from(KEYS))}
    options: dict[str, st.SearchStrategy[Any]] = {
        "equals": scalars.filter(lambda v: v is not None),
        "not_equals": scalars.filter(lambda v: v is not None),
        "in": st.tuples(scalars, scalars),
        "not_in": st.tuples(scalars),
        "gt": st.sampled_from([0.0, 1.0]),
        "gte": st.sampled_from([1.0, 1.5]),
        "lt": st.sampled_from([2.0]),
        "exists": st.booleans(),
    }
    chosen = draw(st.lists(st.sampled_from(sorted(options)), min_size=1, max_size=3, unique=True))
    for name in chosen:
        fields[name] = draw(options[name])
    return AttributeCondition.model_validate(fields)


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(condition=attribute_conditions(), attributes=documents)
@example(AttributeCondition(attribute="a", equals="[]"), {"a": []})  # a list is not its text
@example(AttributeCondition(attribute="a", equals=1), {"a": True})  # true is not 1
@example(AttributeCondition(attribute="a", gte=1.0), {"a": "x"})  # text sorts above numbers
@example(AttributeCondition.model_validate({"attribute": "a", "not_in": [None]}), {})
def test_sql_attribute_tests_agree_with_facts(
    connection: Connection, condition: AttributeCondition, attributes: dict[str, Any]
) -> None:
    assert sql_attribute(connection, condition, attributes) == _attribute_holds(
        condition, attributes
    )
