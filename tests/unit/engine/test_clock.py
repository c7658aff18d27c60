"""Time-zone math: next local clock times, quiet hours and send windows, across DST."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from omni_journey.engine.clock import (
    in_clock_window,
    next_local_time,
    next_send_time,
    quiet_until,
    window_opens,
    zone,
)
from omni_journey.spec.models import QuietHours, SendWindow

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
TOKYO = ZoneInfo("Asia/Tokyo")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def quiet(start: str, end: str) -> QuietHours:
    return QuietHours.model_validate({"start": start, "end": end})


@pytest.mark.parametrize(
    ("after", "clock", "tz", "expected"),
    [
        # later today, in each zone
        (utc(2026, 5, 4, 12), time(9), NY, utc(2026, 5, 4, 13)),  # 08:00 EDT -> 09:00
        (utc(2026, 5, 4, 14), time(9), NY, utc(2026, 5, 5, 13)),  # 10:00 EDT -> tomorrow
        (utc(2026, 5, 4, 5), time(9), BERLIN, utc(2026, 5, 4, 7)),  # 07:00 CEST -> 09:00
        (utc(2026, 5, 4, 5), time(9), TOKYO, utc(2026, 5, 5, 0)),  # 14:00 JST -> tomorrow
        # exactly at the clock time: now
        (utc(2026, 5, 4, 7), time(9), BERLIN, utc(2026, 5, 4, 7)),
        # the clock time after a spring-forward night: 09:00 is EDT (UTC-4), not EST
        (utc(2026, 3, 8, 3), time(9), NY, utc(2026, 3, 8, 13)),
        # ... and after fall back: 09:00 EST (UTC-5)
        (utc(2026, 11, 1, 3), time(9), NY, utc(2026, 11, 1, 14)),
        # a time in the gap (02:30 does not exist on 2026-03-08 in New York): just after it
        (utc(2026, 3, 8, 5), time(2, 30), NY, utc(2026, 3, 8, 7, 30)),
        # a time that happens twice: the first one still ahead
        (utc(2026, 11, 1, 6, 15), time(1, 30), NY, utc(2026, 11, 1, 6, 30)),
    ],
)
def test_next_local_time(after: datetime, clock: time, tz: ZoneInfo, expected: datetime) -> None:
    assert next_local_time(after, clock, tz) == expected


def test_in_clock_window_crosses_midnight() -> None:
    assert in_clock_window(time(23), time(21), time(8))
    assert in_clock_window(time(3), time(21), time(8))
    assert not in_clock_window(time(8), time(21), time(8))
    assert not in_clock_window(time(12), time(21), time(8))
    assert in_clock_window(time(12), time(9), time(17))


@pytest.mark.parametrize(
    ("at", "tz", "expected"),
    [
        # 22:00 EDT (quiet) -> 08:00 EDT next morning
        (utc(2026, 5, 4, 2), NY, utc(2026, 5, 4, 12)),
        # 04:00 CEST (quiet, after midnight) -> 08:00 CEST the same day
        (utc(2026, 5, 4, 2), BERLIN, utc(2026, 5, 4, 6)),
        # 11:00 JST: not quiet
        (utc(2026, 5, 4, 2), TOKYO, None),
        # spring forward in New York: quiet from 21:00 EST, ends 08:00 EDT (12:00 UTC)
        (utc(2026, 3, 8, 3), NY, utc(2026, 3, 8, 12)),
        # spring forward in Berlin (2026-03-29): 23:30 CET -> 08:00 CEST = 06:00 UTC
        (utc(2026, 3, 28, 22, 30), BERLIN, utc(2026, 3, 29, 6)),
        # fall back in New York: 23:00 EDT -> 08:00 EST = 13:00 UTC
        (utc(2026, 11, 1, 3), NY, utc(2026, 11, 1, 13)),
    ],
)
def test_quiet_until(at: datetime, tz: ZoneInfo, expected: datetime | None) -> None:
    assert quiet_until(at, quiet("21:00", "08:00"), tz) == expected


def test_quiet_window_inside_a_day() -> None:
    lunch = quiet("12:00", "13:30")
    assert quiet_until(utc(2026, 5, 4, 10, 15), lunch, BERLIN) == utc(2026, 5, 4, 11, 30)
    assert quiet_until(utc(2026, 5, 4, 11, 30), lunch, BERLIN) is None


def test_send_window_opens_on_the_next_allowed_day() -> None:
    weekdays = SendWindow.model_validate(
        {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}
    )
    # Saturday 2026-05-09 10:00 Berlin -> Monday 09:00 CEST
    assert window_opens(utc(2026, 5, 9, 8), weekdays, BERLIN) == utc(2026, 5, 11, 7)
    # Monday 08:00 Tokyo -> 09:00 the same day
    assert window_opens(utc(2026, 5, 3, 23), weekdays, TOKYO) == utc(2026, 5, 4, 0)
    # Monday 19:00 New York -> Tuesday 09:00
    assert window_opens(utc(2026, 5, 4, 23), weekdays, NY) == utc(2026, 5, 5, 13)
    # open: Wednesday 10:00 Berlin
    assert window_opens(utc(2026, 5, 6, 8), weekdays, BERLIN) is None


def test_send_window_across_midnight_belongs_to_its_start_day() -> None:
    late = SendWindow.model_validate({"days": ["fri"], "start": "22:00", "end": "02:00"})
    assert window_opens(utc(2026, 5, 8, 21), late, BERLIN) is None  # Fri 23:00
    assert window_opens(utc(2026, 5, 8, 23), late, BERLIN) is None  # Sat 01:00
    assert window_opens(utc(2026, 5, 9, 1), late, BERLIN) == utc(2026, 5, 15, 20)  # Sat 03:00


def test_next_send_time_combines_quiet_hours_and_window() -> None:
    window = SendWindow.model_validate({"start": "07:00", "end": "20:00"})
    # Berlin 06:00: window opens at 07:00 but quiet until 08:00
    assert next_send_time(utc(2026, 5, 4, 4), quiet("21:00", "08:00"), window, BERLIN) == utc(
        2026, 5, 4, 6
    )
    # a window entirely inside quiet hours never opens: None, not a loop
    night = SendWindow.model_validate({"start": "23:00", "end": "23:30"})
    assert next_send_time(utc(2026, 5, 4, 4), quiet("21:00", "08:00"), night, BERLIN) is None


def test_zone_refuses_unknown_names() -> None:
    assert zone("Mars/Olympus") is None
    assert zone("") == ZoneInfo("UTC")
    assert zone("Asia/Tokyo") == TOKYO
