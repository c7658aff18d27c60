"""The engine copies an enrollment's context before changing it: a deep copy, never a
shared piece, for every JSON-shaped value (and anything else through deepcopy)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from omni_journey.engine.advance import _copy_context

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


def _containers(value: Any) -> list[int]:
    if isinstance(value, dict):
        return [id(value), *(i for v in value.values() for i in _containers(v))]
    if isinstance(value, list):
        return [id(value), *(i for v in value for i in _containers(v))]
    return []


@given(st.dictionaries(st.text(max_size=5), JSON, max_size=5))
def test_a_copy_equals_the_context_and_shares_no_container(context: dict[str, Any]) -> None:
    copied = _copy_context(context)
    assert copied == context == copy.deepcopy(context)
    assert not set(_containers(copied)) & set(_containers(context))


def test_other_values_are_deep_copied_too() -> None:
    context = {"at": datetime(2026, 5, 1, tzinfo=UTC), "pair": ({"a": [1]},)}
    copied = _copy_context(context)
    assert copied == context
    assert copied["pair"][0] is not context["pair"][0]
