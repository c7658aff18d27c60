"""Holdout lift: do customers the journey treats convert more than its control group?

The engine puts a deterministic share of entries in the holdout (``holdout: 10%``);
they take no steps but their goal conversions are logged like everyone else's. From
the journey log, in one grouped query: enrollments entered in ``[since, until)`` by
holdout flag, and how many of *those* enrollments converted (whenever they did).

* conversion rates with Wilson 95% intervals;
* absolute lift (treated rate minus holdout rate) with Newcombe's hybrid score
  interval; relative lift (treated / holdout - 1) with the Katz log interval;
* a verdict in plain words, and how many entries a test of this size would need.

Enrollments whose goal window is still open can still convert: early numbers are low
for both groups alike (the split is random), so the lift is fair but the rates grow.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select

from omni_journey.analytics.periods import within
from omni_journey.analytics.stats import (
    entries_needed,
    newcombe_interval,
    ratio_interval,
    wilson_interval,
)
from omni_journey.store.core import JOURNEY_LOG

__all__ = ["MIN_ARM", "Lift", "Rate", "holdout_lift", "judge"]

MIN_ARM = 30  # below this many entries in an arm, no verdict beyond "too early"


@dataclass(frozen=True)
class Rate:
    """Conversions of ``enrollments``; ``rate``, ``low`` and ``high`` are ``None`` for 0."""

    converted: int
    enrollments: int
    rate: float | None
    low: float | None
    high: float | None

    @classmethod
    def of(cls, converted: int, enrollments: int, confidence: float = 0.95) -> Rate:
        interval = wilson_interval(converted, enrollments, confidence)
        if interval is None:
            return cls(converted, enrollments, None, None, None)
        return cls(converted, enrollments, converted / enrollments, interval.low, interval.high)


@dataclass(frozen=True)
class Lift:
    """Treated vs holdout conversion, lifts with intervals, and what it means.

    ``absolute*`` are differences of rates (0.02 = two percentage points);
    ``relative*`` are treated / holdout - 1 (0.25 = a quarter more conversions).
    ``entries_needed`` is the total entries (both groups, at the observed split) a
    test would need to detect the observed absolute lift; ``None`` when not computable.
    """

    journey_key: str
    since: datetime | None
    until: datetime | None
    treated: Rate
    holdout: Rate
    absolute: float | None
    absolute_low: float | None
    absolute_high: float | None
    relative: float | None
    relative_low: float | None
    relative_high: float | None
    significant: bool
    entries_needed: int | None
    verdict: str
    confidence: float = 0.95


def holdout_lift(
    connection: Connection,
    journey_key: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    confidence: float = 0.95,
) -> Lift:
    """Conversion of treated vs holdout enrollments entered in ``[since, until)``."""
    log = JOURNEY_LOG.c
    converted = (
        select(JOURNEY_LOG.c.enrollment_id)
        .where(and_(log.journey_key == journey_key, log.kind == "converted"))
        .distinct()
        .subquery("converted")
    )
    entered = JOURNEY_LOG.alias("entered")
    rows: Any = connection.execute(
        select(entered.c.holdout, func.count(), func.count(converted.c.enrollment_id))
        .select_from(
            entered.outerjoin(converted, converted.c.enrollment_id == entered.c.enrollment_id)
        )
        .where(
            and_(
                entered.c.journey_key == journey_key,
                entered.c.kind == "entered",
                *within(entered.c.at, since, until),
            )
        )
        .group_by(entered.c.holdout)
    ).all()
    counts = {bool(holdout): (int(n), int(c)) for holdout, n, c in rows}
    treated_n, treated_c = counts.get(False, (0, 0))
    holdout_n, holdout_c = counts.get(True, (0, 0))
    return judge(
        journey_key,
        treated_c,
        treated_n,
        holdout_c,
        holdout_n,
        since=since,
        until=until,
        confidence=confidence,
    )


def judge(
    journey_key: str,
    treated_converted: int,
    treated: int,
    holdout_converted: int,
    holdout: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    confidence: float = 0.95,
) -> Lift:
    """The statistics and the verdict for given counts (no store access)."""
    t = Rate.of(treated_converted, treated, confidence)
    h = Rate.of(holdout_converted, holdout, confidence)
    diff = newcombe_interval(treated_converted, treated, holdout_converted, holdout, confidence)
    ratio = ratio_interval(treated_converted, treated, holdout_converted, holdout, confidence)
    absolute = t.rate - h.rate if t.rate is not None and h.rate is not None else None
    relative = (
        t.rate / h.rate - 1.0 if t.rate is not None and h.rate is not None and h.rate > 0 else None
    )
    significant = diff is not None and not diff.contains(0.0) and min(treated, holdout) > 0
    needed = None
    if absolute is not None and t.rate is not None and h.rate is not None:
        needed = entries_needed(t.rate, h.rate, holdout / (treated + holdout))
    lift = Lift(
        journey_key=journey_key,
        since=since,
        until=until,
        treated=t,
        holdout=h,
        absolute=absolute,
        absolute_low=diff.low if diff else None,
        absolute_high=diff.high if diff else None,
        relative=relative,
        relative_low=ratio.low - 1.0 if ratio else None,
        relative_high=ratio.high - 1.0 if ratio else None,
        significant=significant,
        entries_needed=needed,
        verdict="",
        confidence=confidence,
    )
    return _with_verdict(lift)


def _pp(value: float) -> str:
    """A difference of rates in percentage points: ``+1.2 pp``."""
    return f"{100 * value:+.1f} pp"


def _with_verdict(lift: Lift) -> Lift:
    return replace(lift, verdict=_verdict(lift))


def _verdict(lift: Lift) -> str:
    t, h = lift.treated, lift.holdout
    level = f"{lift.confidence:.0%}"
    if t.enrollments == 0 and h.enrollments == 0:
        return "no entries yet: nothing to measure."
    if h.enrollments == 0:
        return (
            "no holdout: every entry was treated, so the journey's effect cannot be measured. "
            'Add a control group to the journey (for example holdout: "10%").'
        )
    if t.enrollments == 0:
        return "every entry so far is in the holdout: nothing treated to compare yet."
    if t.converted == 0 and h.converted == 0:
        return "no conversions yet in either group: too early to tell."
    assert lift.absolute is not None and lift.absolute_low is not None
    assert lift.absolute_high is not None
    span = f"({level} CI {_pp(lift.absolute_low)} to {_pp(lift.absolute_high)})"
    if lift.significant and lift.absolute > 0:
        return (
            f"the journey lifts conversion: treated customers convert {_pp(lift.absolute)} "
            f"more than the holdout {span}."
        )
    if lift.significant:
        return (
            f"treated customers convert less than the holdout: {_pp(lift.absolute)} {span}. "
            "The journey may be hurting; look at its messages and frequency."
        )
    if min(t.enrollments, h.enrollments) < MIN_ARM:
        return (
            f"not significant yet: only {min(t.enrollments, h.enrollments)} entries in the "
            f"smaller group; observed {_pp(lift.absolute)} {span}."
        )
    total = t.enrollments + h.enrollments
    if lift.entries_needed is None:
        return f"not significant yet: no difference between the groups so far {span}."
    more = lift.entries_needed - total
    if more <= 0:
        return (
            f"not significant: observed {_pp(lift.absolute)} {span}; at this size a lift "
            "this small is within chance."
        )
    return (
        f"not significant yet: observed {_pp(lift.absolute)} {span}; about "
        f"{lift.entries_needed:,} entries in total (about {more:,} more at the current "
        "split) would tell a lift of this size from chance."
    )
