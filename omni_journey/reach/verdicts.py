"""Verdicts folded from :data:`omni_journey.reach.rules.RULES`: may this channel be used
for this customer, and if not, why, as Python (one loaded customer) and as SQL (the
segment compiler's ``reachable``, bulk loading). Nothing here restates a rule.

The reason codes are the engine's (``CustomerFacts.eligible``, ``engine/guards.py``):
``None`` when the channel may be used, else ``unreachable``, ``no_consent`` or
``suppressed``, in that order of precedence.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, Final

from sqlalchemy import ColumnElement, Label, and_, case, not_, null

from omni_journey.reach.rules import ADDRESS_OF, RULES, UNREACHABLE, Profile, Suppressed, addresses
from omni_journey.spec.conditions import CHANNELS

__all__ = [
    "address",
    "eligibility",
    "eligibility_columns",
    "eligibility_from_row",
    "eligible_channels",
    "reachable",
    "reason",
]

_LABEL: Final = "reach_{}"


def eligibility(profile: Profile, channel: str, suppressed: Suppressed) -> str | None:
    """``None`` when ``channel`` may be used for ``profile``, else the first failing
    rule's reason. ``suppressed`` holds (channel, address) pairs; it only needs to know
    the profile's own addresses. A channel reach does not know is ``unreachable``."""
    if channel not in ADDRESS_OF:
        return UNREACHABLE
    for rule in RULES:
        if not rule.holds(profile, channel, suppressed):
            return rule.reason
    return None


def eligible_channels(profile: Profile, suppressed: Suppressed) -> dict[str, str | None]:
    """:func:`eligibility` for every channel: the shape of ``CustomerFacts.eligible``."""
    return {channel: eligibility(profile, channel, suppressed) for channel in CHANNELS}


def address(profile: Profile, channel: str, suppressed: Suppressed) -> str | None:
    """The address to send on: the first one not suppressed, else the first one (so the
    caller can still tell "suppressed" from "unreachable"); ``None`` when there is none."""
    found = addresses(profile, channel)
    for value in found:
        if (channel, value) not in suppressed:
            return value
    return found[0] if found else None


def reachable(channel: str) -> ColumnElement[bool]:
    """SQL: every rule holds on ``channel`` for the outer ``customers`` row (two-valued)."""
    return and_(*(rule.sql(channel) for rule in RULES))


def reason(channel: str) -> ColumnElement[Any]:
    """SQL: the same verdict as :func:`eligibility`, ``NULL`` when the channel may be used."""
    return case(*((not_(rule.sql(channel)), rule.reason) for rule in RULES), else_=null())


@cache
def eligibility_columns() -> tuple[Label[Any], ...]:
    """One labelled :func:`reason` column per channel, to add to a ``SELECT`` over
    ``customers`` (read back with :func:`eligibility_from_row`); built once."""
    return tuple(reason(channel).label(_LABEL.format(channel)) for channel in CHANNELS)


def eligibility_from_row(row: Any) -> dict[str, str | None]:
    """The ``CustomerFacts.eligible`` map of a row selected with :func:`eligibility_columns`."""
    mapping: Mapping[str, Any] = row._mapping
    return {
        channel: (None if (v := mapping[_LABEL.format(channel)]) is None else str(v))
        for channel in CHANNELS
    }
