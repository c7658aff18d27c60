"""The engine's public surface: what the service imports. Changing it is a decision."""

from __future__ import annotations

import inspect

import omni_journey.engine as engine
from omni_journey.engine import types


def test_public_names_are_pinned() -> None:
    assert len(engine.__all__) == len(set(engine.__all__))
    assert set(engine.__all__) == {
        "ENTRY_STEP",
        "MAX_TRANSITIONS",
        "NO_FACTS",
        "AdvanceResult",
        "CompiledJourney",
        "CompiledStep",
        "EntryCandidate",
        "FactNeeds",
        "advance",
        "compile_journey",
        "evaluate_entry",
        "facts_needed",
        "holdout_bucket",
        "match_filters",
        "plan_migration",
        "split_bucket",
    }
    for name in engine.__all__:
        assert getattr(engine, name) is not None


def test_every_type_is_exported() -> None:
    for name in types.__all__:
        assert hasattr(types, name)


def test_signatures() -> None:
    assert list(inspect.signature(engine.advance).parameters) == [
        "journey",
        "states",
        "events",
        "facts",
        "now",
        "global_cap",
    ]
    assert inspect.signature(engine.advance).parameters["global_cap"].kind is (
        inspect.Parameter.KEYWORD_ONLY
    )
    assert list(inspect.signature(engine.evaluate_entry).parameters) == [
        "journey",
        "candidates",
        "facts",
        "now",
    ]
    assert list(inspect.signature(engine.compile_journey).parameters) == ["spec", "version_id"]
    assert list(inspect.signature(engine.plan_migration).parameters) == ["old", "new", "migrate"]
    assert list(inspect.signature(engine.holdout_bucket).parameters) == [
        "journey_key",
        "customer_id",
    ]
    assert list(inspect.signature(engine.match_filters).parameters) == ["where", "properties"]
