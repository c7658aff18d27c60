"""The common case of a profile batch, set-based: profiles that merge nobody.

Most profiles (a CRM export, its daily re-import) name one customer and identities
that are theirs or nobody's. For those the outcome does not depend on the order of
the batch, so they need no per-record walk of the identity graph: the owners of every
key in the batch are looked up once (one query per kind and chunk), the customers and
consents involved are read once, each profile is applied to its customer in memory
with the same :class:`~omni_journey.identity.CustomerState` rules the graph uses
(columns, attributes, latest consent wins), and the changes are written with driver
``executemany`` / PostgreSQL ``unnest``: SQLAlchemy's per-row binds cost more than the
statements themselves.

:func:`split_independent` decides which profiles qualify: every identity they carry is
owned by their customer or by nobody, and no customer or identity they touch is
touched by another profile of the batch. The rest (merges, moved push tokens, profiles
that share a customer or an address) go through
:class:`~omni_journey.identity.IdentityGraph`, in input order; being disjoint from
the independent ones, the two groups can be written one after the other.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection

from omni_journey.identity.consent_log import append_consent_changes
from omni_journey.identity.keys import IdentityKey, derive_customer_id
from omni_journey.identity.lookup import lookup_owners
from omni_journey.identity.profiles import ConsentState, CustomerState, consent_changes
from omni_journey.identity.statements import Profile
from omni_journey.store.driver import DriverSql

__all__ = ["apply_independent", "batch_owners", "split_independent"]

_CHUNK = 1000
_CUSTOMER_COLUMNS = (
    ("id", "text"),
    ("email", "text"),
    ("phone", "text"),
    ("timezone", "text"),
    ("locale", "text"),
    ("attributes", "jsonb"),
    ("merged_into", "text"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
)
_IDENTITY_COLUMNS = (
    ("kind", "text"),
    ("value", "text"),
    ("customer_id", "text"),
    ("created_at", "timestamptz"),
)
_CONSENT_COLUMNS = (
    ("customer_id", "text"),
    ("channel", "text"),
    ("granted", "boolean"),
    ("source", "text"),
    ("updated_at", "timestamptz"),
)


def batch_owners(connection: Connection, profiles: Sequence[Profile]) -> dict[IdentityKey, str]:
    """The owner of every key that decides where a profile of the batch lands, and of
    the ``customer_id`` key of every customer found (a profile links it to them):
    one query per kind and chunk of values, twice."""
    keys: set[IdentityKey] = set()
    for profile in profiles:
        keys.update(profile.linking, profile.push)
        keys.update(("customer_id", c) for c in profile.seeds)
    owners = lookup_owners(connection, keys)
    found = {("customer_id", c) for c in owners.values()} - keys
    owners.update(lookup_owners(connection, found))
    return owners


def _survivor(profile: Profile, owners: Mapping[IdentityKey, str]) -> tuple[str, bool]:
    """The customer a profile speaks for as the batch starts (for a merge, the graph's
    first choice), and whether it merges nobody and moves no push token."""
    found = {owners[k] for k in profile.linking if k in owners}
    if profile.customer_id is not None:
        survivor = owners.get(("customer_id", profile.customer_id), profile.customer_id)
    elif found:
        survivor = min(found)
    else:
        survivor = derive_customer_id(profile.linking[0])
    moves = any(owners.get(k, survivor) != survivor for k in profile.push)
    return survivor, not found - {survivor} and not moves


def split_independent(
    profiles: Sequence[Profile], owners: Mapping[IdentityKey, str]
) -> tuple[list[tuple[Profile, str]], list[Profile]]:
    """(independent profiles with their customer, the rest in input order).

    Independent: merges nobody, moves no push token, and shares no identity and no
    customer (its own, or an owner of one of its identities) with another profile of
    the batch, whatever that one is."""
    survivors = [_survivor(p, owners) for p in profiles]
    touched: list[set[object]] = []
    for profile, (survivor, _) in zip(profiles, survivors, strict=True):
        keys = (*profile.linking, *profile.push)
        marks: set[object] = {*keys, ("customer", survivor)}
        marks.update(("customer", owners[k]) for k in keys if k in owners)
        touched.append(marks)
    seen = Counter(mark for marks in touched for mark in marks)
    independent: list[tuple[Profile, str]] = []
    rest: list[Profile] = []
    for profile, (survivor, alone), marks in zip(profiles, survivors, touched, strict=True):
        if alone and all(seen[mark] == 1 for mark in marks):
            independent.append((profile, survivor))
        else:
            rest.append(profile)
    return independent, rest


def apply_independent(
    connection: Connection,
    items: Sequence[tuple[Profile, str]],
    owners: Mapping[IdentityKey, str],
    now: datetime,
) -> int:
    """Apply independent profiles inside the caller's transaction; how many changed
    the store (the rest count as duplicates)."""
    if not items:
        return 0
    sql = DriverSql(connection)
    states = _load_customers(connection, sql, [survivor for _, survivor in items])
    new_keys: list[tuple[str, str, str]] = []
    accepted = 0
    for profile, survivor in items:
        customer = states.get(survivor)
        changed = customer is None
        if customer is None:
            customer = states[survivor] = CustomerState(
                id=survivor, created_at=now, new=True, dirty=True
            )
        for key in dict.fromkeys((*profile.linking, ("customer_id", survivor), *profile.push)):
            if key not in owners:
                new_keys.append((key[0], key[1], survivor))
                changed = True
        for column, value in profile.columns.items():
            changed |= customer.set_column(column, value)
        changed |= customer.update_attributes(profile.attributes)
        for channel, granted in profile.consent.items():
            changed |= customer.state_consent(channel, granted, profile.at, "profile")
        accepted += changed
    _save(connection, sql, list(states.values()), sorted(new_keys), now)
    return accepted


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _select(connection: Connection, sql: DriverSql, query: str, ids: Sequence[str]) -> list[Any]:
    """``query`` (ending in the id column) over ``ids``: ``IN`` chunks on SQLite, one
    ``= ANY`` array on PostgreSQL; plain DBAPI rows."""
    cursor: Any = connection.connection.cursor()
    rows: list[Any] = []
    try:
        if sql.sqlite:
            for chunk in _chunks(ids):
                cursor.execute(f"{query} IN ({sql.params(len(chunk))})", tuple(chunk))
                rows += cursor.fetchall()
        else:
            cursor.execute(f"{query} = ANY(%s)", (list(ids),))
            rows = cursor.fetchall()
    finally:
        cursor.close()
    return rows


class _Timestamps:
    """What ``UTCDateTime`` reads: SQLite's naive UTC text, PostgreSQL's aware value.
    Remembered by value: a batch's rows share a few stamps (the ``now`` of the
    batch that wrote them), and parsing each again costs more than the lookup."""

    def __init__(self) -> None:
        self._seen: dict[Any, datetime] = {}

    def __call__(self, value: Any) -> datetime:
        found = self._seen.get(value)
        if found is None:
            when = datetime.fromisoformat(value) if isinstance(value, str) else value
            assert isinstance(when, datetime)
            found = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
            self._seen[value] = found
        return found


def _json(value: Any) -> dict[str, Any]:
    """What the store's JSON column reads (orjson, then ``json`` for what it refuses)."""
    if not isinstance(value, str | bytes):
        return dict(value or {})
    try:
        return dict(orjson.loads(value))
    except orjson.JSONDecodeError:
        return dict(json.loads(value))


def _load_customers(
    connection: Connection, sql: DriverSql, ids: Sequence[str]
) -> dict[str, CustomerState]:
    wanted = sorted(set(ids))
    timestamp = _Timestamps()
    states: dict[str, CustomerState] = {}
    columns = "id, created_at, email, phone, timezone, locale, attributes, merged_into"
    for row in _select(connection, sql, f"SELECT {columns} FROM customers WHERE id", wanted):
        states[row[0]] = CustomerState(
            id=row[0],
            created_at=timestamp(row[1]),
            email=row[2],
            phone=row[3],
            timezone=row[4],
            locale=row[5],
            attributes=_json(row[6]),
            merged_into=row[7],
        )
    query = "SELECT customer_id, channel, granted, updated_at, source FROM consents"
    query += " WHERE customer_id"
    for customer_id, channel, granted, updated_at, source in _select(
        connection, sql, query, [c for c in wanted if c in states]
    ):
        states[customer_id].consents[channel] = ConsentState(
            bool(granted), timestamp(updated_at), source
        )
    return states


def _save(
    connection: Connection,
    sql: DriverSql,
    states: Sequence[CustomerState],
    new_keys: Sequence[tuple[str, str, str]],
    now: datetime,
) -> None:
    """What :meth:`IdentityGraph.save` writes for a batch without merges: customers,
    identities, then each changed customer's consents replaced, their changes logged."""
    bound: dict[datetime, object] = {}  # a batch's rows share a few stamps

    def timestamp(value: datetime) -> object:
        found = bound.get(value)
        if found is None:
            found = bound[value] = sql.timestamp(value)
        return found

    stamp = timestamp(now)
    dirty = [s for s in states if s.dirty]
    fresh = [
        (
            s.id,
            s.email,
            s.phone,
            s.timezone,
            s.locale,
            orjson.dumps(s.attributes).decode(),
            s.merged_into,
            timestamp(s.created_at),
            stamp,
        )
        for s in dirty
        if s.new
    ]
    if fresh:
        sql.insert_ignore(connection, "customers", _CUSTOMER_COLUMNS, fresh, "id")
    known = [
        # json.dumps, as the column type writes: what was read may hold what orjson
        # refuses (NaN, integers past 64 bits)
        (
            s.email,
            s.phone,
            s.timezone,
            s.locale,
            json.dumps(s.attributes),
            s.merged_into,
            stamp,
            s.id,
        )
        for s in dirty
        if not s.new
    ]
    if known:
        sql.executemany(
            connection,
            f"UPDATE customers SET email = {sql.p}, phone = {sql.p}, timezone = {sql.p}, "
            f"locale = {sql.p}, attributes = {sql.json_p}, merged_into = {sql.p}, "
            f"updated_at = {sql.p} WHERE id = {sql.p}",
            known,
        )
    if new_keys:
        rows = [(kind, value, owner, stamp) for kind, value, owner in new_keys]
        sql.insert_ignore(connection, "identities", _IDENTITY_COLUMNS, rows, "kind, value")
    stated = sorted(s.id for s in states if s.consents_dirty)
    by_id = {s.id: s for s in states}
    if stated:
        for chunk in _chunks(stated):
            connection.exec_driver_sql(
                f"DELETE FROM consents WHERE customer_id IN ({sql.params(len(chunk))})",
                tuple(chunk),
            )
        consents = [
            (customer_id, channel, c.granted, c.source, timestamp(c.updated_at))
            for customer_id in stated
            for channel, c in sorted(by_id[customer_id].consents.items())
        ]
        sql.insert_ignore(
            connection, "consents", _CONSENT_COLUMNS, consents, "customer_id, channel"
        )
        append_consent_changes(connection, consent_changes(by_id[c] for c in stated))
