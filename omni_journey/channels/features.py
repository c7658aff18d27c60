"""Features from history, for a batch of customers at once, as of one instant.

:func:`load_history` runs a handful of set-based queries per chunk of customers
(never one per customer) over ``events`` (the store's one record of what was sent and
how customers answered) and the profile tables, and returns :class:`History`: numpy
arrays aligned with the customer list.

* per channel, counts of ``message.sent`` / ``delivered`` / ``opened`` / ``clicked`` /
  ``bounced`` / ``unsubscribed``, of messages engaged with (opened or clicked, each
  message once), and of sends followed by an order within the attribution window
  ("converted"), over the last 7, 30 and 180 days;
* per channel, days since the last engagement and since the last send;
* views, cart adds and orders over the same windows, days since the last order,
  revenue over 180 days;
* a 24-bin histogram of human engagement by the customer's local hour over 90 days
  (clicks, push and WhatsApp opens, views, cart adds, orders; email opens are left out:
  many are machine opens);
* time zone, attributes, whether a push token is on file.

Everything counted is strictly before ``as_of``, so training can rebuild what was
known at decision time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Interval,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
)

from omni_journey.spec.conditions import CHANNELS
from omni_journey.store.core import CUSTOMERS, EVENTS, IDENTITIES

__all__ = [
    "BEHAVIOURS",
    "CHANNELS",
    "STATS",
    "WINDOWS",
    "History",
    "load_history",
    "local_hours",
]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

WINDOWS: tuple[int, ...] = (7, 30, 180)  # days
STATS: tuple[str, ...] = (
    "sent",
    "delivered",
    "opened",
    "clicked",
    "bounced",
    "unsubscribed",
    "engaged",
    "converted",
)
BEHAVIOURS: tuple[str, ...] = ("product.viewed", "product.added", "order.completed")
_MESSAGE_EVENTS = {f"message.{s}": STATS.index(s) for s in STATS[:6]}
_HUMAN = (
    "message.clicked",
    "product.viewed",
    "product.added",
    "checkout.started",
    "order.completed",
)
_HOURS_DAYS = 90
_LAST_ORDER_DAYS = 365
_CHUNK = 1000


@dataclass
class History:
    """What the store knew of a batch of customers at ``as_of`` (see the module doc).

    ``counts[i, channel, stat, window]``; ``behaviour[i, kind, window]``; times are in
    days before ``as_of`` and ``nan`` when it never happened.
    """

    customer_ids: tuple[str, ...]
    as_of: datetime
    counts: FloatArray
    last_engaged: FloatArray
    last_sent: FloatArray
    behaviour: FloatArray
    last_order: FloatArray
    revenue: FloatArray
    hours: FloatArray
    timezones: tuple[str, ...]
    attributes: tuple[Mapping[str, Any], ...]
    has_push_token: BoolArray
    local_hour: FloatArray  # (n,) the customer's local hour at decision time

    def __len__(self) -> int:
        return len(self.customer_ids)

    def stat(self, name: str, window: int) -> FloatArray:
        """(n, channels) counts of one statistic over one window."""
        return np.asarray(self.counts[:, :, STATS.index(name), WINDOWS.index(window)])

    def take(self, rows: NDArray[np.int64]) -> History:
        """The rows ``rows`` (in that order, repeats allowed)."""
        return History(
            customer_ids=tuple(self.customer_ids[i] for i in rows.tolist()),
            as_of=self.as_of,
            counts=self.counts[rows],
            last_engaged=self.last_engaged[rows],
            last_sent=self.last_sent[rows],
            behaviour=self.behaviour[rows],
            last_order=self.last_order[rows],
            revenue=self.revenue[rows],
            hours=self.hours[rows],
            timezones=tuple(self.timezones[i] for i in rows.tolist()),
            attributes=tuple(self.attributes[i] for i in rows.tolist()),
            has_push_token=self.has_push_token[rows],
            local_hour=self.local_hour[rows],
        )

    def at(self, times: Sequence[datetime]) -> History:
        """The same history, decided at ``times`` (one per row) instead of ``as_of``."""
        return replace(self, local_hour=local_hours(self.timezones, times))

    @staticmethod
    def concat(parts: Sequence[History]) -> History:
        """Rows of several histories (each keeps its own ``as_of`` semantics)."""
        if not parts:
            raise ValueError("nothing to concatenate")
        return History(
            customer_ids=tuple(c for p in parts for c in p.customer_ids),
            as_of=max(p.as_of for p in parts),
            counts=np.concatenate([p.counts for p in parts]),
            last_engaged=np.concatenate([p.last_engaged for p in parts]),
            last_sent=np.concatenate([p.last_sent for p in parts]),
            behaviour=np.concatenate([p.behaviour for p in parts]),
            last_order=np.concatenate([p.last_order for p in parts]),
            revenue=np.concatenate([p.revenue for p in parts]),
            hours=np.concatenate([p.hours for p in parts]),
            timezones=tuple(t for p in parts for t in p.timezones),
            attributes=tuple(a for p in parts for a in p.attributes),
            has_push_token=np.concatenate([p.has_push_token for p in parts]),
            local_hour=np.concatenate([p.local_hour for p in parts]),
        )


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _days(as_of: datetime, at: datetime | None) -> float:
    return float("nan") if at is None else (as_of - at).total_seconds() / 86400.0


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _windows(at: ColumnElement[Any], as_of: datetime) -> list[ColumnElement[Any]]:
    return [func.sum(case((at >= as_of - timedelta(days=w), 1), else_=0)) for w in WINDOWS[:-1]] + [
        func.count()
    ]


def _within(
    later: ColumnElement[Any], earlier: ColumnElement[Any], dialect: str, hours: float
) -> Any:
    if dialect == "sqlite":
        return func.julianday(later) - func.julianday(earlier) <= hours / 24.0
    return later <= earlier + literal(timedelta(hours=hours), Interval())


def _utc_hour(at: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    if dialect == "sqlite":
        return cast(func.strftime("%H", at), Integer)
    return cast(func.extract("hour", func.timezone("UTC", at)), Integer)


def load_history(
    connection: Connection,
    customer_ids: Sequence[str],
    as_of: datetime,
    *,
    attribution_hours: float = 72.0,
) -> History:
    """:class:`History` of ``customer_ids`` (in that order) as of ``as_of``."""
    ids = list(customer_ids)
    n, k = len(ids), len(CHANNELS)
    position = {c: i for i, c in enumerate(ids)}
    counts = np.zeros((n, k, len(STATS), len(WINDOWS)))
    last_engaged = np.full((n, k), np.nan)
    last_sent = np.full((n, k), np.nan)
    behaviour = np.zeros((n, len(BEHAVIOURS), len(WINDOWS)))
    last_order = np.full(n, np.nan)
    revenue = np.zeros(n)
    utc_hours = np.zeros((n, 24))
    zones = ["UTC"] * n
    attributes: list[Mapping[str, Any]] = [{}] * n
    tokens = np.zeros(n, dtype=bool)
    dialect = connection.dialect.name
    channel_of = EVENTS.c.properties["channel"].as_string()
    message_of = EVENTS.c.properties["message_id"].as_string()
    since = as_of - timedelta(days=WINDOWS[-1])
    before = EVENTS.c.at < as_of
    channel: ColumnElement[Any] = literal_column("channel")
    for chunk in _chunks(ids):
        mine = EVENTS.c.customer_id.in_(chunk)
        rows = connection.execute(
            select(
                EVENTS.c.customer_id,
                EVENTS.c.name,
                channel_of.label("channel"),
                *_windows(EVENTS.c.at, as_of),
                func.max(EVENTS.c.at),
            )
            .where(mine, EVENTS.c.name.in_(_MESSAGE_EVENTS), EVENTS.c.at >= since, before)
            .group_by(EVENTS.c.customer_id, EVENTS.c.name, channel)
        )
        for row in rows:
            if row.channel not in CHANNELS:
                continue
            i, c = position[row.customer_id], CHANNELS.index(row.channel)
            counts[i, c, _MESSAGE_EVENTS[row.name]] = row[3:6]
            if row.name == "message.sent":
                last_sent[i, c] = _days(as_of, row[6])
        message = func.coalesce(message_of, EVENTS.c.event_id)
        rows = connection.execute(
            select(
                EVENTS.c.customer_id,
                channel_of.label("channel"),
                *[
                    func.count(
                        func.distinct(case((EVENTS.c.at >= as_of - timedelta(days=w), message)))
                    )
                    for w in WINDOWS
                ],
                func.max(EVENTS.c.at),
            )
            .where(
                mine,
                EVENTS.c.name.in_(("message.opened", "message.clicked")),
                EVENTS.c.at >= since,
                before,
            )
            .group_by(EVENTS.c.customer_id, channel)
        )
        for row in rows:
            if row.channel in CHANNELS:
                i, c = position[row.customer_id], CHANNELS.index(row.channel)
                counts[i, c, STATS.index("engaged")] = row[2:5]
                last_engaged[i, c] = _days(as_of, row[5])
        sent, order = EVENTS.alias("sent"), EVENTS.alias("ordered")
        followed = (
            select(order.c.seq)
            .where(
                order.c.customer_id == sent.c.customer_id,
                order.c.name == "order.completed",
                order.c.at > sent.c.at,
                order.c.at < as_of,
                _within(order.c.at, sent.c.at, dialect, attribution_hours),
            )
            .exists()
        )
        sent_channel = sent.c.properties["channel"].as_string().label("channel")
        rows = connection.execute(
            select(sent.c.customer_id, sent_channel, *_windows(sent.c.at, as_of))
            .where(
                sent.c.customer_id.in_(chunk),
                sent.c.name == "message.sent",
                sent.c.at >= since,
                sent.c.at < as_of,
                followed,
            )
            .group_by(sent.c.customer_id, channel)
        )
        for row in rows:
            if row.channel in CHANNELS:
                i, c = position[row.customer_id], CHANNELS.index(row.channel)
                counts[i, c, STATS.index("converted")] = row[2:5]
        total = EVENTS.c.properties["total"].as_float()
        rows = connection.execute(
            select(
                EVENTS.c.customer_id,
                EVENTS.c.name,
                *[
                    func.sum(case((EVENTS.c.at >= as_of - timedelta(days=w), 1), else_=0))
                    for w in WINDOWS
                ],
                func.max(EVENTS.c.at),
                func.sum(case((EVENTS.c.at >= since, total), else_=0.0)),
            )
            .where(
                mine,
                EVENTS.c.name.in_(BEHAVIOURS),
                EVENTS.c.at >= as_of - timedelta(days=_LAST_ORDER_DAYS),
                before,
            )
            .group_by(EVENTS.c.customer_id, EVENTS.c.name)
        )
        for row in rows:
            i, b = position[row.customer_id], BEHAVIOURS.index(row.name)
            behaviour[i, b] = row[2:5]
            if row.name == "order.completed":
                last_order[i] = _days(as_of, row[5])
                revenue[i] = float(row[6] or 0.0)
        hour = _utc_hour(EVENTS.c.at, dialect).label("hour")
        human = or_(
            EVENTS.c.name.in_(_HUMAN),
            and_(EVENTS.c.name == "message.opened", channel_of.in_(("push", "whatsapp"))),
        )
        rows = connection.execute(
            select(EVENTS.c.customer_id, hour, func.count())
            .where(mine, human, EVENTS.c.at >= as_of - timedelta(days=_HOURS_DAYS), before)
            .group_by(EVENTS.c.customer_id, literal_column("hour"))
        )
        for row in rows:
            utc_hours[position[row.customer_id], int(row.hour) % 24] = row[2]
        for row in connection.execute(
            select(CUSTOMERS.c.id, CUSTOMERS.c.timezone, CUSTOMERS.c.attributes).where(
                CUSTOMERS.c.id.in_(chunk)
            )
        ):
            i = position[row.id]
            zones[i] = row.timezone or "UTC"
            attributes[i] = dict(row.attributes or {})
        for row in connection.execute(
            select(IDENTITIES.c.customer_id)
            .where(IDENTITIES.c.kind == "push_token", IDENTITIES.c.customer_id.in_(chunk))
            .distinct()
        ):
            tokens[position[row.customer_id]] = True
    return History(
        customer_ids=tuple(ids),
        as_of=as_of,
        counts=counts,
        last_engaged=last_engaged,
        last_sent=last_sent,
        behaviour=behaviour,
        last_order=last_order,
        revenue=revenue,
        hours=_local_hours(utc_hours, zones, as_of),
        timezones=tuple(zones),
        attributes=tuple(attributes),
        has_push_token=tokens,
        local_hour=local_hours(zones, [as_of] * n),
    )


def local_hours(zones: Sequence[str], times: Sequence[datetime]) -> FloatArray:
    """Local hour of day (with minutes as a fraction) of each time in each zone."""
    out = np.zeros(len(zones))
    cache: dict[str, ZoneInfo] = {}
    for i, (name, at) in enumerate(zip(zones, times, strict=True)):
        zone = cache.get(name)
        if zone is None:
            zone = cache[name] = _zone(name)
        local = at.astimezone(zone)
        out[i] = local.hour + local.minute / 60.0
    return out


def _local_hours(utc_hours: FloatArray, zones: Sequence[str], as_of: datetime) -> FloatArray:
    """Rotate each customer's UTC-hour histogram into their local hours (offset at
    ``as_of``, rounded to the hour)."""
    offsets: dict[str, int] = {}
    shift = np.zeros(len(zones), dtype=np.int64)
    for i, name in enumerate(zones):
        if name not in offsets:
            delta = as_of.astimezone(_zone(name)).utcoffset() or timedelta(0)
            offsets[name] = round(delta.total_seconds() / 3600)
        shift[i] = offsets[name]
    columns = (np.arange(24)[None, :] + shift[:, None]) % 24
    local = np.zeros_like(utc_hours)
    np.put_along_axis(local, columns, utc_hours, axis=1)
    return local
