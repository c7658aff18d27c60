"""Reach: may a channel be used for a customer, and if not, why. Defined once.

Address, consent and suppression rules live in one table (:mod:`.rules`), each rule
with its Python and its SQL form; :mod:`.verdicts` folds that table into the Python
verdict for one loaded customer and the SQL predicates the segment compiler and bulk
loading use; :mod:`.load` loads the Python path's facts for a batch; :mod:`.quiet` is
quiet-hour eligibility on the engine's clock. See README.md for the layering.
"""

from __future__ import annotations

from omni_journey.reach.load import ReachBatch, ReachFacts, load_reach, load_reach_by_id
from omni_journey.reach.quiet import INVALID_TIMEZONE, QUIET_HOURS, quiet_ends, quiet_reason
from omni_journey.reach.rules import (
    ADDRESS_OF,
    NO_CONSENT,
    RULES,
    SUPPRESSED,
    UNREACHABLE,
    AddressSource,
    Profile,
    Rule,
    Suppressed,
    addresses,
    consenting,
    has_consent,
)
from omni_journey.reach.verdicts import (
    address,
    eligibility,
    eligibility_columns,
    eligibility_from_row,
    eligible_channels,
    reachable,
    reason,
)

__all__ = [
    "ADDRESS_OF",
    "INVALID_TIMEZONE",
    "NO_CONSENT",
    "QUIET_HOURS",
    "RULES",
    "SUPPRESSED",
    "UNREACHABLE",
    "AddressSource",
    "Profile",
    "ReachBatch",
    "ReachFacts",
    "Rule",
    "Suppressed",
    "address",
    "addresses",
    "consenting",
    "eligibility",
    "eligibility_columns",
    "eligibility_from_row",
    "eligible_channels",
    "has_consent",
    "load_reach",
    "load_reach_by_id",
    "quiet_ends",
    "quiet_reason",
    "reachable",
    "reason",
]
