"""Send time: the customer's best hour within the next 24 hours.

A customer's 24-bin histogram of human engagement by local hour (clicks, app and
WhatsApp opens, visits, carts, orders; not email opens, many of which are machine
opens) is shrunk toward the population's histogram::

    weight[h] = (count[h] + strength * population[h]) / (total + strength)

then smoothed over neighbouring hours (1/4, 1/2, 1/4): a customer with three clicks at
21:00 leans toward 21:00 (and 20:00 next to it) without ignoring when people in
general read. Among the next 24 hourly slots (the current hour first, at
``now``; then each local hour's start) outside quiet hours, the heaviest slot wins
(ties: the earliest); with probability ``explore`` a uniformly random allowed slot is
taken instead, so the histogram keeps learning about other hours.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from omni_journey.engine.clock import in_clock_window
from omni_journey.spec.models import QuietHours

__all__ = ["best_send_time", "candidate_slots", "shrunk_histogram"]

DEFAULT_STRENGTH = 10.0
DEFAULT_EXPLORE = 0.05


def shrunk_histogram(
    histogram: Sequence[float], population: Sequence[float], strength: float = DEFAULT_STRENGTH
) -> list[float]:
    """The customer's hour weights shrunk toward the population's (both 24 bins), then
    smoothed over neighbouring hours (1/4, 1/2, 1/4, around the clock): someone who
    reads at 21:00 is likelier to read at 20:00 than at noon."""
    if len(histogram) != 24 or len(population) != 24:
        raise ValueError("histograms have 24 bins, one per local hour")
    total = float(sum(population))
    prior = [p / total for p in population] if total > 0 else [1 / 24] * 24
    mass = float(sum(histogram))
    shrunk = [(h + strength * p) / (mass + strength) for h, p in zip(histogram, prior, strict=True)]
    return [
        0.25 * shrunk[(h - 1) % 24] + 0.5 * shrunk[h] + 0.25 * shrunk[(h + 1) % 24]
        for h in range(24)
    ]


def candidate_slots(
    now: datetime, tz: ZoneInfo, quiet_hours: QuietHours | None, horizon: int = 24
) -> list[datetime]:
    """``now``, then the start of each following local hour, within ``horizon`` hours,
    leaving out every instant inside quiet hours (in UTC, DST-safe)."""
    top = now.astimezone(tz).replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    slots = [now] + [top + timedelta(hours=h) for h in range(1, horizon)]
    if quiet_hours is None:
        return slots
    return [
        s
        for s in slots
        if not in_clock_window(
            s.astimezone(tz).time().replace(tzinfo=None), quiet_hours.start, quiet_hours.end
        )
    ]


def best_send_time(
    histogram: Sequence[float],
    population: Sequence[float],
    now: datetime,
    tz: ZoneInfo,
    quiet_hours: QuietHours | None,
    rng: random.Random,
    *,
    strength: float = DEFAULT_STRENGTH,
    explore: float = DEFAULT_EXPLORE,
) -> datetime:
    """When to send within the next 24 hours (see the module doc). Returns ``now`` when
    no slot is allowed (the engine's quiet-hours guard then defers as usual)."""
    slots = candidate_slots(now, tz, quiet_hours)
    if not slots:
        return now
    if rng.random() < explore:
        return slots[rng.randrange(len(slots))]
    weights = shrunk_histogram(histogram, population, strength)
    best = max(range(len(slots)), key=lambda i: (weights[slots[i].astimezone(tz).hour], -i))
    return slots[best]
