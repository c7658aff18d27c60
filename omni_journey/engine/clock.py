"""Time-zone math in the customer's zone: local dates, next clock times, quiet hours
and send windows. DST-safe through :mod:`zoneinfo`.

Every function takes and returns aware datetimes (returned in UTC). A wall-clock time
that does not exist on a day (the spring-forward gap) resolves to the instant just
after the gap; one that exists twice (fall back) resolves to the first occurrence that
is still ahead.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from omni_journey.spec.models import QuietHours, SendWindow

__all__ = [
    "WEEKDAYS",
    "in_clock_window",
    "local_date",
    "next_local_time",
    "next_local_time_after",
    "next_send_time",
    "quiet_until",
    "window_opens",
    "zone",
]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MAX_DEFERRALS = 16


def zone(name: str | None) -> ZoneInfo | None:
    """The customer's zone (``UTC`` when unset); ``None`` when the name is not a zone."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return None


def local_date(at: datetime, tz: ZoneInfo) -> date:
    return at.astimezone(tz).date()


def _occurrences(day: date, clock: time, tz: ZoneInfo) -> list[datetime]:
    """The instants (UTC) at which the wall clock reads ``clock`` on ``day``, in order.

    Two in the fall-back hour; in the spring-forward gap, none reads it: the instant
    just after the gap stands in (``fold=0`` maps a gap time past the gap).
    """
    naive = datetime.combine(day, clock)
    found = set()
    for fold in (0, 1):
        instant = naive.replace(tzinfo=tz, fold=fold).astimezone(UTC)
        if instant.astimezone(tz).replace(tzinfo=None) == naive:
            found.add(instant)
    if not found:
        found.add(naive.replace(tzinfo=tz, fold=0).astimezone(UTC))
    return sorted(found)


def _first_at_or_after(day: date, clock: time, tz: ZoneInfo, after: datetime) -> datetime | None:
    for instant in _occurrences(day, clock, tz):
        if instant >= after:
            return instant
    return None


def next_local_time(after: datetime, clock: time, tz: ZoneInfo) -> datetime:
    """The first instant at or after ``after`` when the local clock reads ``clock``."""
    local = after.astimezone(tz)
    day = (
        local.date() if local.time().replace(tzinfo=None) <= clock else local.date() + timedelta(1)
    )
    for offset in range(3):
        found = _first_at_or_after(day + timedelta(offset), clock, tz, after)
        if found is not None:
            return found
    raise AssertionError("unreachable: a clock time occurs every day")  # pragma: no cover


def in_clock_window(clock: time, start: time, end: time) -> bool:
    """Whether ``clock`` is in [start, end); a window with start > end crosses midnight."""
    if start <= end:
        return start <= clock < end
    return clock >= start or clock < end


def quiet_until(at: datetime, quiet: QuietHours, tz: ZoneInfo) -> datetime | None:
    """When the quiet window around ``at`` ends; ``None`` when ``at`` is not quiet."""
    local = at.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    if not in_clock_window(clock, quiet.start, quiet.end):
        return None
    return next_local_time_after(at, quiet.end, tz)


def window_opens(at: datetime, window: SendWindow, tz: ZoneInfo) -> datetime | None:
    """When the send window next opens; ``None`` when it is open at ``at``."""
    local = at.astimezone(tz)
    today, clock = local.date(), local.time().replace(tzinfo=None)
    yesterday = today - timedelta(1)
    if window.start <= window.end:
        if _day_in(today, window) and window.start <= clock < window.end:
            return None
    elif (_day_in(today, window) and clock >= window.start) or (
        _day_in(yesterday, window) and clock < window.end
    ):
        return None
    for offset in range(8):
        day = today + timedelta(offset)
        if _day_in(day, window):
            found = _first_at_or_after(day, window.start, tz, at)
            if found is not None and found > at:
                return found
    return None  # no days at all: compile_journey refuses such a window


def next_send_time(
    at: datetime, quiet: QuietHours | None, window: SendWindow | None, tz: ZoneInfo
) -> datetime | None:
    """The first instant at or after ``at`` outside quiet hours and inside the window.

    ``None`` when none is found within a few deferrals (a window entirely inside the
    quiet hours): the caller skips rather than waiting forever.
    """
    candidate = at
    for _ in range(_MAX_DEFERRALS):
        later = quiet_until(candidate, quiet, tz) if quiet else None
        if later is None and window is not None:
            later = window_opens(candidate, window, tz)
        if later is None:
            return candidate
        candidate = later
    return None


def next_local_time_after(at: datetime, clock: time, tz: ZoneInfo) -> datetime:
    """The first instant strictly after ``at`` when the local clock reads ``clock``."""
    found = next_local_time(at, clock, tz)
    if found > at:
        return found
    return next_local_time(at + timedelta(seconds=1), clock, tz)


def _day_in(day: date, window: SendWindow) -> bool:
    return WEEKDAYS[day.weekday()] in window.days
