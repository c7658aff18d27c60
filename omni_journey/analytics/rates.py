"""Delivery, engagement and suppression per channel, from the outbox and feedback events.

The messages are those created in the window (a cohort); grouped queries count them
by channel and status, and count the feedback events (``message.delivered`` ...) that
name one of them, each message once per kind (three opens of one email are one opened
message). Feedback without a message id (a tracked link click, an SMS ``STOP``) counts
one per event, on the channel it names. Feedback about messages the outbox never held
(history imported from another tool) is left out. Another query lists the suppression
list by channel and reason.

Rates (``None`` when the denominator is 0):

* ``delivered``, ``opened``, ``clicked``, ``bounced``, ``complained``,
  ``unsubscribed``: share of messages **sent** (accepted by the provider);
* ``failed`` and ``suppressed``: share of messages **attempted** (sent + failed +
  suppressed: the dispatcher's final outcomes).

Providers report what they can: the file outbox reports nothing, SES reports
deliveries, bounces, complaints, opens and clicks, FCM only accepts; a rate of 0 can
mean "not reported".
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, and_, cast, func, select

from omni_journey.analytics.periods import within
from omni_journey.store.core import EVENTS, MESSAGES, SUPPRESSIONS

__all__ = [
    "FEEDBACK",
    "ChannelDelivery",
    "SuppressionCount",
    "delivery_rates",
    "suppression_counts",
]

FEEDBACK: tuple[str, ...] = (
    "delivered",
    "opened",
    "clicked",
    "bounced",
    "complained",
    "unsubscribed",
)


@dataclass(frozen=True)
class ChannelDelivery:
    """One channel's outbox outcomes and feedback counts in the window."""

    channel: str
    queued: int = 0
    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    bounced: int = 0
    complained: int = 0
    unsubscribed: int = 0

    @property
    def attempted(self) -> int:
        return self.sent + self.failed + self.suppressed

    @property
    def rates(self) -> dict[str, float | None]:
        def share(count: int, of: int) -> float | None:
            return count / of if of else None

        rates = {name: share(getattr(self, name), self.sent) for name in FEEDBACK}
        rates["failed"] = share(self.failed, self.attempted)
        rates["suppressed"] = share(self.suppressed, self.attempted)
        return rates


@dataclass(frozen=True)
class SuppressionCount:
    """Addresses on the suppression list for ``channel`` with ``reason``."""

    channel: str
    reason: str
    count: int


def delivery_rates(
    connection: Connection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[ChannelDelivery]:
    """Per channel (sorted), what happened to the messages created in the window and
    what customers did with them."""
    in_window = [MESSAGES.c.channel != "webhook", *within(MESSAGES.c.created_at, since, until)]
    statuses: Any = connection.execute(
        select(MESSAGES.c.channel, MESSAGES.c.status, func.count())
        .where(and_(*in_window))
        .group_by(MESSAGES.c.channel, MESSAGES.c.status)
    ).all()
    names = [f"message.{name}" for name in FEEDBACK]
    reference = EVENTS.c.properties["message_id"].as_string()
    events_in_window = [EVENTS.c.name.in_(names), *within(EVENTS.c.at, since, until)]
    # feedback naming an outbox row: each (kind, message) once, on the row's channel
    linked = (
        select(EVENTS.c.name, reference.label("message_id"))
        .where(and_(*events_in_window, reference.is_not(None)))
        .distinct()
        .subquery("linked")
    )
    if connection.dialect.name == "postgresql":
        match = cast(MESSAGES.c.id, String) == linked.c.message_id
    else:  # SQLite: json_extract gives numbers as integers; a rowid lookup
        match = MESSAGES.c.id == linked.c.message_id
    cohort: Any = connection.execute(
        select(MESSAGES.c.channel, linked.c.name, func.count())
        .select_from(linked.join(MESSAGES, match))
        .where(and_(*in_window))
        .group_by(MESSAGES.c.channel, linked.c.name)
    ).all()
    # feedback without a message id (a tracked link click, an SMS STOP): each event once
    channel = EVENTS.c.properties["channel"].as_string()
    unlinked: Any = connection.execute(
        select(channel, EVENTS.c.name, func.count())
        .where(and_(*events_in_window, reference.is_(None)))
        .group_by(channel, EVENTS.c.name)
    ).all()
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for name, status, count in statuses:
        counts[str(name)]["queued" if status in ("pending", "claimed") else str(status)] += count
    for name, event, count in [*cohort, *unlinked]:
        if name:
            counts[str(name)][str(event).removeprefix("message.")] += count
    return [_delivery(name, counts[name]) for name in sorted(counts)]


def _delivery(channel: str, counts: Counter[str]) -> ChannelDelivery:
    return ChannelDelivery(
        channel,
        queued=counts["queued"],
        sent=counts["sent"],
        failed=counts["failed"],
        suppressed=counts["suppressed"],
        delivered=counts["delivered"],
        opened=counts["opened"],
        clicked=counts["clicked"],
        bounced=counts["bounced"],
        complained=counts["complained"],
        unsubscribed=counts["unsubscribed"],
    )


def suppression_counts(connection: Connection) -> list[SuppressionCount]:
    """The suppression list's size by channel and reason (all time: it only grows)."""
    rows: Any = connection.execute(
        select(SUPPRESSIONS.c.channel, SUPPRESSIONS.c.reason, func.count()).group_by(
            SUPPRESSIONS.c.channel, SUPPRESSIONS.c.reason
        )
    ).all()
    found = [SuppressionCount(str(c), str(r), int(n)) for c, r, n in rows]
    return sorted(found, key=lambda s: (s.channel, -s.count, s.reason))
