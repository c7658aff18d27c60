"""The demo shop's customers' local time: their zones, and when a person is awake.

Customers live in a handful of zones (:data:`ZONES`, with a locale and a share each);
:class:`LocalClock` turns simulated UTC seconds into each customer's local hour (offsets
cached per zone and day, daylight saving included) and draws times at the hours a
customer is active, so engagement has the daily shape a send-time model can learn.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np

from omni_journey.lab.shop_truth import FloatArray, IntArray

__all__ = ["DAY", "HOUR", "ZONES", "LocalClock"]

DAY = 86400.0
HOUR = 3600.0
ZONES: tuple[tuple[str, str, float], ...] = (
    ("Europe/Berlin", "de", 0.30),
    ("Europe/London", "en", 0.15),
    ("America/New_York", "en", 0.25),
    ("America/Los_Angeles", "en", 0.15),
    ("Asia/Tokyo", "ja", 0.15),
)


class LocalClock:
    """Local time for customers whose zone indexes (into :data:`ZONES`) are ``zone``."""

    def __init__(self, zone: IntArray) -> None:
        self.zone = zone
        self._offsets: dict[tuple[int, int], float] = {}

    def offset_hours(self, zone: int, t: float) -> float:
        key = (zone, int(t // DAY))
        found = self._offsets.get(key)
        if found is None:
            when = datetime.fromtimestamp(key[1] * DAY, UTC).astimezone(ZoneInfo(ZONES[zone][0]))
            offset = when.utcoffset()
            found = offset.total_seconds() / HOUR if offset is not None else 0.0
            self._offsets[key] = found
        return found

    def local_hour(self, index: IntArray, at: FloatArray) -> FloatArray:
        offsets = np.array(
            [
                self.offset_hours(int(self.zone[i]), t)
                for i, t in zip(index.tolist(), at.tolist(), strict=True)
            ]
        )
        return np.asarray(np.mod(at / HOUR + offsets, 24.0))

    def human_times(
        self,
        owner: IntArray,
        peak_hour: FloatArray,
        t0: float,
        t1: float,
        rng: np.random.Generator,
    ) -> FloatArray:
        """Times in [t0, t1) at hours the owners are active (around their peak hour)."""
        if len(owner) == 0:
            return np.zeros(0)
        t = rng.uniform(t0, t1, size=len(owner))
        offsets = np.array(
            [
                self.offset_hours(int(self.zone[i]), x)
                for i, x in zip(owner.tolist(), t.tolist(), strict=True)
            ]
        )
        local_day = np.floor((t / HOUR + offsets) / 24.0) * 24.0
        hour = np.mod(peak_hour[owner] + rng.normal(0.0, 2.0, len(owner)), 24.0)
        out = (local_day + hour - offsets) * HOUR
        out = np.where(out >= t1, out - DAY, out)
        out = np.where(out < t0, out + DAY, out)
        return np.asarray(np.clip(out, t0, np.nextafter(t1, t0)))
