"""The live counts on a journey's page, and the customers behind each count.

The counts are the report's funnel (:func:`omni_journey.analytics.funnels.journey_funnel`,
all history): per step, enrollments that reached it, customers waiting there now,
messages queued by channel, skips by reason, conversions (last touch); per journey,
entries, refusals by reason and conversions. A count is named by a short code
(``entered``, ``waiting``, ``sent:email``, ``skipped:no_consent``, ``converted``,
``refused:re_entry``) and :func:`customers_behind` lists up to ``limit`` customers
behind it, newest first, with the same filters the funnel counted with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, Connection, func, or_, select

from omni_journey.analytics.funnels import ENTRY_STEP, Funnel, StepFunnel
from omni_journey.store.core import ENROLLMENTS, JOURNEY_LOG

__all__ = ["COUNT_CODE", "Chip", "CustomerSample", "customers_behind", "step_chips", "total_chips"]

#: A count's code: what it counts, and for sent / skipped / refused, which channel or reason.
COUNT_CODE: Final = re.compile(
    r"^(entered|waiting|converted|(sent|skipped|refused):([^\s]{1,128}))$"
)
_UNKNOWN: Final = "unknown"  # the funnel's name for a missing reason


@dataclass(frozen=True, slots=True)
class Chip:
    """One count as the page shows it: its label, its number and its code."""

    label: str
    number: int
    code: str


@dataclass(frozen=True, slots=True)
class CustomerSample:
    customer_id: str
    at: datetime | None


def step_chips(step: StepFunnel) -> list[Chip]:
    """The counts of one step: entered and waiting always, the rest when not zero."""
    chips = [Chip("entered", step.entered, "entered"), Chip("waiting", step.waiting, "waiting")]
    chips += [Chip(f"sent {c}", n, f"sent:{c}") for c, n in step.sent.items() if n]
    chips += [Chip(f"skipped {r}", n, f"skipped:{r}") for r, n in step.skipped.items() if n]
    if step.converted:
        chips.append(Chip("converted", step.converted, "converted"))
    return chips


def total_chips(funnel: Funnel) -> list[Chip]:
    """The journey's own counts: entered (holdout included), refused by reason, converted."""
    chips = [Chip("entered", funnel.entered, "entered")]
    chips += [Chip(f"refused {r}", n, f"refused:{r}") for r, n in funnel.refused.items() if n]
    chips.append(Chip("converted", funnel.converted, "converted"))
    return chips


def _reason_is(value: str) -> ColumnElement[bool]:
    if value == _UNKNOWN:
        return or_(JOURNEY_LOG.c.reason.is_(None), JOURNEY_LOG.c.reason == _UNKNOWN)
    return JOURNEY_LOG.c.reason == value


def customers_behind(
    connection: Connection, journey_key: str, step: str | None, code: str, *, limit: int = 50
) -> list[CustomerSample]:
    """Up to ``limit`` customers behind the count ``code`` (at ``step``, or on the
    journey when ``step`` is None), each once, the most recent first. ``ValueError``
    for a code that names no count."""
    match = COUNT_CODE.match(code)
    if match is None:
        raise ValueError(f"not a count: {code!r}")
    kind, value = match.group(2) or match.group(1), match.group(3)
    if kind == "waiting":
        enrolled = ENROLLMENTS.c
        where = [
            enrolled.journey_key == journey_key,
            enrolled.state == "active",
            enrolled.holdout.is_(False),
        ]
        if step is not None:
            where.append(enrolled.step_id == step)
        return _latest_per_customer(
            connection, enrolled.customer_id, enrolled.updated_at, where, limit
        )
    log = JOURNEY_LOG.c
    conditions: list[ColumnElement[bool]] = [log.journey_key == journey_key]
    if kind == "entered":
        conditions.append(log.kind == ("entered" if step is None else "step"))
    elif kind == "sent":
        conditions += [log.kind == "sent", _reason_is(str(value))]
    elif kind == "skipped":
        conditions += [log.kind == "skipped", log.step_id != ENTRY_STEP, _reason_is(str(value))]
    elif kind == "refused":
        conditions += [log.kind == "skipped", log.step_id == ENTRY_STEP, _reason_is(str(value))]
    else:  # converted: on a step, the treated customers it converted (last touch)
        conditions.append(log.kind == "converted")
        if step is not None:
            conditions.append(log.holdout.is_(False))
    if step is not None and kind != "refused":
        conditions.append(log.step_id == step)
    return _latest_per_customer(connection, log.customer_id, log.at, conditions, limit)


def _latest_per_customer(
    connection: Connection,
    customer: ColumnElement[Any],
    at: ColumnElement[Any],
    where: list[ColumnElement[bool]],
    limit: int,
) -> list[CustomerSample]:
    """Each customer matching ``where`` once, with their latest ``at``, newest first."""
    latest = func.max(at)
    rows = connection.execute(
        select(customer, latest.label("at"))
        .where(*where)
        .group_by(customer)
        .order_by(latest.desc(), customer)
        .limit(limit)
    )
    return [CustomerSample(str(r[0]), r.at) for r in rows]
