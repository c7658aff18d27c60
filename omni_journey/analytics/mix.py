"""Channel mix over time: messages sent per channel per calendar bucket (UTC).

One grouped query over the outbox. A message counts when the provider accepted it
(``status = 'sent'``), in the bucket of its ``sent_at``. Webhooks are not a channel a
customer reads and are left out.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, select

from omni_journey.analytics.periods import Bucket, bucket_expression, parse_bucket, within
from omni_journey.store.core import MESSAGES

__all__ = ["MixRow", "channel_mix", "mix_table"]


@dataclass(frozen=True)
class MixRow:
    """``count`` messages sent on ``channel`` in the bucket starting at ``period``."""

    period: datetime
    channel: str
    count: int


def channel_mix(
    connection: Connection,
    *,
    bucket: Bucket = "day",
    since: datetime | None = None,
    until: datetime | None = None,
    journey_key: str | None = None,
) -> list[MixRow]:
    """Messages sent per ``bucket`` and channel, oldest first (empty buckets left out)."""
    period = bucket_expression(connection, MESSAGES.c.sent_at, bucket).label("period")
    conditions = [
        MESSAGES.c.status == "sent",
        MESSAGES.c.channel != "webhook",
        MESSAGES.c.sent_at.is_not(None),
        *within(MESSAGES.c.sent_at, since, until),
    ]
    if journey_key is not None:
        conditions.append(MESSAGES.c.journey_key == journey_key)
    rows: Any = connection.execute(
        select(period, MESSAGES.c.channel, func.count())
        .where(and_(*conditions))
        .group_by(period, MESSAGES.c.channel)
    ).all()
    mix = [MixRow(parse_bucket(p), str(channel), int(count)) for p, channel, count in rows]
    return sorted(mix, key=lambda row: (row.period, row.channel))


def _next(period: datetime, bucket: Bucket) -> datetime:
    if bucket == "hour":
        return period + timedelta(hours=1)
    if bucket == "day":
        return period + timedelta(days=1)
    if bucket == "week":
        return period + timedelta(weeks=1)
    year, month = divmod(period.month, 12)
    return period.replace(year=period.year + year, month=month + 1)


def mix_table(rows: list[MixRow], bucket: Bucket = "day") -> list[dict[str, Any]]:
    """One row per bucket from the first to the last (empty ones as zeros), one column
    per channel: ``{"period": "2026-05-04", "email": 12, "push": 3, ..., "total": 15}``."""
    if not rows:
        return []
    channels = sorted({row.channel for row in rows})
    counts: dict[datetime, dict[str, int]] = defaultdict(dict)
    for row in rows:
        counts[row.period][row.channel] = row.count
    table: list[dict[str, Any]] = []
    period, last = rows[0].period, rows[-1].period
    while period <= last:
        row_counts = counts.get(period, {})
        label = period.strftime("%Y-%m-%d %H:00" if bucket == "hour" else "%Y-%m-%d")
        entry: dict[str, Any] = {"period": label}
        entry.update({c: row_counts.get(c, 0) for c in channels})
        entry["total"] = sum(row_counts.values())
        table.append(entry)
        period = _next(period, bucket)
    return table
