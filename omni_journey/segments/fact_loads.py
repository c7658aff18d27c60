"""The set-based reads behind the facts, one function per kind of fact.

:func:`~omni_journey.segments.facts.load_facts` (one batch) and
:class:`~omni_journey.segments.fact_cache.FactCache` (one pass) both load through
these, so a customer's facts are the same whichever asked. Each reads its customers in
chunks of ``IN (...)`` lists; the hot ones (recent sends, event history) read through
the driver, decoded as the column types do.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, select

from omni_journey.engine.types import CustomerFacts
from omni_journey.reach import UNREACHABLE, eligibility_columns, eligibility_from_row
from omni_journey.spec.conditions import CHANNELS
from omni_journey.store.core import CONSENTS, CUSTOMERS
from omni_journey.store.driver import DriverSql

__all__ = [
    "ANY_EVENT",
    "History",
    "Profile",
    "Sends",
    "chunks",
    "customer_facts",
    "load_consent",
    "load_events",
    "load_profiles",
    "load_sends",
]

CHUNK = 500
ANY_EVENT = frozenset({"*"})  # event_names meaning every event
# What CustomerFacts takes from a profile (the rest of the row costs reading for nothing).
_PROFILE_COLUMNS = (CUSTOMERS.c.id, CUSTOMERS.c.timezone, CUSTOMERS.c.attributes)
_COUNTED = ("pending", "claimed", "sent")  # a message in these counts against caps

# (zone, attributes, eligibility) of one stored profile
Profile = tuple[ZoneInfo, Mapping[str, Any], Mapping[str, str | None]]
Sends = list[tuple[str | None, datetime]]  # (journey key, send_after) of recent messages
History = list[tuple[str, datetime, Mapping[str, Any]]]  # (name, at, properties), by time


def chunks(items: Sequence[str], size: int = CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def load_profiles(connection: Connection, ids: Sequence[str]) -> dict[str, Profile]:
    """Time zone, attributes and channel eligibility of the stored profiles among ``ids``."""
    profiles: dict[str, Profile] = {}
    for chunk in chunks(ids):
        rows = connection.execute(
            select(*_PROFILE_COLUMNS, *eligibility_columns()).where(CUSTOMERS.c.id.in_(chunk))
        )
        for row in rows:
            profiles[row.id] = (
                _zone(row.timezone),
                dict(row.attributes or {}),
                eligibility_from_row(row),
            )
    return profiles


def load_consent(connection: Connection, ids: Sequence[str]) -> dict[str, dict[str, bool]]:
    """Consent per channel of ``ids`` (customers without any are absent)."""
    consent: dict[str, dict[str, bool]] = defaultdict(dict)
    for chunk in chunks(ids):
        for row in connection.execute(select(CONSENTS).where(CONSENTS.c.customer_id.in_(chunk))):
            consent[row.customer_id][row.channel] = row.granted
    return consent


def load_sends(connection: Connection, ids: Sequence[str], since: datetime) -> dict[str, Sends]:
    """Messages queued or sent to ``ids`` from ``since`` on (webhooks are no message)."""
    sql = DriverSql(connection)
    p = sql.p
    sends: dict[str, Sends] = defaultdict(list)
    # a pass queues its messages at one time: the same few values, parsed once each
    stamp = cache(sql.read_timestamp)
    for chunk in chunks(ids):
        rows = sql.fetch(
            connection,
            f"SELECT customer_id, journey_key, send_after FROM messages "
            f"WHERE customer_id IN ({sql.params(len(chunk))}) AND send_after >= {p} "
            f"AND status IN ({sql.params(len(_COUNTED))}) AND channel <> {p}",
            [*chunk, sql.timestamp(since), *_COUNTED, "webhook"],
        )
        for customer_id, journey_key, send_after in rows:
            sends[customer_id].append((journey_key, stamp(send_after)))
    return sends


def load_events(
    connection: Connection, ids: Sequence[str], names: frozenset[str], since: datetime
) -> dict[str, History]:
    """Events of ``ids`` with one of ``names`` (:data:`ANY_EVENT`: any) at or after
    ``since``, by customer, in time order."""
    sql = DriverSql(connection)
    p = sql.p
    ordered = sorted(names) if names != ANY_EVENT else []
    named = f" AND name IN ({sql.params(len(ordered))})" if ordered else ""
    events: dict[str, History] = defaultdict(list)
    stamp, decode = sql.read_timestamp, sql.read_json
    for chunk in chunks(ids):
        rows = sql.fetch(
            connection,
            f"SELECT customer_id, name, at, properties FROM events "
            f"WHERE customer_id IN ({sql.params(len(chunk))}) AND at >= {p}{named} "
            "ORDER BY customer_id, at",
            [*chunk, sql.timestamp(since), *ordered],
        )
        for customer_id, name, at, properties in rows:
            events[customer_id].append((name, stamp(at), decode(properties) or {}))
    return events


def customer_facts(customer_id: str, profile: Profile | None, sends: Sends | None) -> CustomerFacts:
    """A customer's facts from their profile (``None``: unknown, or not loaded) and their
    recent sends (``None``: not loaded), counted by local day in their zone."""
    zone = profile[0] if profile is not None else _zone(None)
    by_day: dict[tuple[str, str], int] = defaultdict(int)
    for journey_key, at in sends or ():
        day = at.astimezone(zone).date().isoformat()
        by_day[("*", day)] += 1
        if journey_key:
            by_day[(journey_key, day)] += 1
    return CustomerFacts(
        customer_id=customer_id,
        timezone=zone.key,
        attributes=dict(profile[1]) if profile is not None else {},
        eligible=(profile[2] if profile is not None else dict.fromkeys(CHANNELS, UNREACHABLE)),
        sends_by_day=dict(by_day),
    )
