"""Quiet-hour eligibility for the layers above the engine, on the engine's own clock.

The engine decides quiet hours for a send itself (``engine/guards.py``: it is pure and
sits below reach, so it cannot ask here); everything above it that needs the same
answer asks here, and here asks :mod:`omni_journey.engine.clock`, so there is one
definition of "quiet" and of "a zone we cannot read". The reason codes are the guards'.
Quiet hours depend on the zone database and the instant, not on the store, so they
have no SQL form: a caller filtering in SQL filters on reach first and asks this per
customer afterwards.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from omni_journey.engine.clock import quiet_until, zone
from omni_journey.spec.models import QuietHours

__all__ = ["INVALID_TIMEZONE", "QUIET_HOURS", "quiet_ends", "quiet_reason"]

QUIET_HOURS: Final = "quiet_hours"
INVALID_TIMEZONE: Final = "invalid_timezone"


def quiet_reason(now: datetime, quiet_hours: QuietHours | None, timezone: str | None) -> str | None:
    """``None`` when a message may go out at ``now``; ``quiet_hours`` inside the window in
    the customer's zone; ``invalid_timezone`` when there is a window but the zone is not
    one (we cannot tell their night from their day). No zone at all means UTC."""
    if quiet_hours is None:
        return None
    tz = zone(timezone)
    if tz is None:
        return INVALID_TIMEZONE
    return QUIET_HOURS if quiet_until(now, quiet_hours, tz) is not None else None


def quiet_ends(
    now: datetime, quiet_hours: QuietHours | None, timezone: str | None
) -> datetime | None:
    """When the quiet window around ``now`` ends (UTC); ``None`` when ``now`` is not
    quiet, or the zone cannot be read (see :func:`quiet_reason`)."""
    tz = zone(timezone)
    if quiet_hours is None or tz is None:
        return None
    return quiet_until(now, quiet_hours, tz)
