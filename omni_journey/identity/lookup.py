"""The ``identities`` table read in bulk."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from sqlalchemy import Connection, Table

from omni_journey.identity.keys import _CHUNK, IdentityKey
from omni_journey.store.driver import DriverSql
from omni_journey.store.tables import metadata

_customers: Table = metadata.tables["customers"]
_identities: Table = metadata.tables["identities"]
_consents: Table = metadata.tables["consents"]
_events: Table = metadata.tables["events"]
_enrollments: Table = metadata.tables["enrollments"]
_messages: Table = metadata.tables["messages"]


def _chunks(values: Sequence[str], size: int = _CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def lookup_owners(connection: Connection, keys: Iterable[IdentityKey]) -> dict[IdentityKey, str]:
    """The customer owning each key that has one: one query per kind and chunk of values."""
    by_kind: dict[str, set[str]] = {}
    for kind, value in keys:
        by_kind.setdefault(kind, set()).add(value)
    owners: dict[IdentityKey, str] = {}
    for kind, values in by_kind.items():
        for value, owner in lookup_values(connection, kind, values).items():
            owners[(kind, value)] = owner
    return owners


def lookup_values(connection: Connection, kind: str, values: Iterable[str]) -> dict[str, str]:
    """``lookup_owners`` for one kind: {value: customer id} for the values owned."""
    sql = DriverSql(connection)
    found: dict[str, str] = {}
    cursor = connection.connection.cursor()  # plain DBAPI rows: this runs per batch
    for chunk in _chunks(sorted(values)):
        if sql.sqlite:
            query = "SELECT value, customer_id FROM identities WHERE kind = ? AND value IN "
            cursor.execute(f"{query}({sql.params(len(chunk))})", (kind, *chunk))
        else:  # a join, so the plan stays an index probe per value whatever the stats
            cursor.execute(
                "SELECT i.value, i.customer_id FROM unnest(%b::text[]) AS v(value) "
                "JOIN identities i ON i.kind = %s AND i.value = v.value",
                (list(chunk), kind),
            )
        found.update(cursor.fetchall())
    cursor.close()
    return found
