"""The pure journey engine: enrollment states and events in, states and effects out.

No I/O, no wall clock, no unseeded randomness: ``now`` is a parameter.
"""

from omni_journey.engine.advance import advance
from omni_journey.engine.compile import CompiledJourney, CompiledStep, compile_journey
from omni_journey.engine.enroll import ENTRY_STEP, evaluate_entry
from omni_journey.engine.filters import match_filters
from omni_journey.engine.hashing import holdout_bucket, split_bucket
from omni_journey.engine.needs import NO_FACTS, FactNeeds, facts_needed
from omni_journey.engine.steps import MAX_TRANSITIONS
from omni_journey.engine.types import AdvanceResult, EntryCandidate
from omni_journey.engine.versioning import plan_migration

__all__ = [
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
]
