"""Durations (``"90m"``, ``"2h"``, ``"3d"``, ``"1w"``, ``"1d12h"``), clock times
(``"09:30"``) and percentages (``"10%"``) as marketers write them."""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema
from pydantic_core import PydanticCustomError

__all__ = [
    "ClockTime",
    "Duration",
    "Percent",
    "format_duration",
    "parse_clock_time",
    "parse_duration",
    "parse_percent",
]

_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
DURATION_PATTERN = r"^([0-9]+[wdhms])+$"
_DURATION_RE = re.compile(DURATION_PATTERN)
_PART_RE = re.compile(r"([0-9]+)([wdhms])")
CLOCK_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
_CLOCK_RE = re.compile(CLOCK_PATTERN)
PERCENT_PATTERN = r"^(100|[0-9]{1,2})(\.[0-9]+)?%$"
_PERCENT_RE = re.compile(PERCENT_PATTERN)


def parse_duration(value: object) -> timedelta:
    """``"1d12h"`` -> ``timedelta(days=1, hours=12)``.

    Raises a ``ValueError`` (a ``PydanticCustomError`` of type ``invalid-duration``).
    """
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str) or not _DURATION_RE.match(value.strip()):
        raise PydanticCustomError(
            "invalid-duration", 'expected a duration like "90m", "2h", "3d" or "1w"'
        )
    seconds = sum(int(n) * _UNITS[u] for n, u in _PART_RE.findall(value.strip()))
    if seconds <= 0:
        raise PydanticCustomError("invalid-duration", "a duration must be longer than zero")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Inverse of :func:`parse_duration`, canonical (largest units first)."""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in _UNITS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def parse_clock_time(value: object) -> time:
    """``"09:30"`` -> ``time(9, 30)``. Raises a ``ValueError`` of type ``invalid-time``."""
    if isinstance(value, time):
        return value
    if not isinstance(value, str) or not _CLOCK_RE.match(value):
        raise PydanticCustomError(
            "invalid-time", 'expected a quoted 24-hour clock time like "09:30"'
        )
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def parse_percent(value: object) -> float:
    """``"10%"`` -> ``0.10``. Raises a ``ValueError`` of type ``invalid-percent``."""
    if isinstance(value, str) and _PERCENT_RE.match(value):
        share = float(value[:-1]) / 100
        if share <= 1:
            return share
    raise PydanticCustomError("invalid-percent", 'expected a percentage like "10%"')


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": 'A duration: a number and a unit of w d h m s ("90m", "3d", "1d12h").',
            "examples": ["1h", "2d", "1w"],
        }
    ),
]

ClockTime = Annotated[
    time,
    BeforeValidator(parse_clock_time),
    PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": CLOCK_PATTERN,
            "description": "A quoted 24-hour clock time in the customer's time zone ('09:30').",
        }
    ),
]

Percent = Annotated[
    float,
    BeforeValidator(parse_percent),
    PlainSerializer(lambda p: f"{round(p * 100, 4):g}%", return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": PERCENT_PATTERN,
            "description": 'A percentage in quotes ("10%").',
        }
    ),
]
