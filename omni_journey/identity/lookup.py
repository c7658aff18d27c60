"""The ``identities`` table read in bulk, and the raw driver SQL the bulk paths write
with.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table

from omni_journey.identity.keys import _CHUNK, IdentityKey
from omni_journey.store.tables import metadata

_customers: Table = metadata.tables["customers"]
_identities: Table = metadata.tables["identities"]
_consents: Table = metadata.tables["consents"]
_events: Table = metadata.tables["events"]
_enrollments: Table = metadata.tables["enrollments"]
_messages: Table = metadata.tables["messages"]


class DriverSql:
    """Placeholders and values for DBAPI ``executemany`` that bind exactly what the
    store's column types would (``UTCDateTime``: naive UTC ISO text on SQLite,
    ``timestamptz`` on PostgreSQL; JSON as text, cast to ``jsonb`` on PostgreSQL)."""

    def __init__(self, connection: Connection) -> None:
        self.sqlite = connection.dialect.name == "sqlite"
        self.p = "?" if self.sqlite else "%s"
        self.json_p = "?" if self.sqlite else "CAST(%s AS jsonb)"

    def params(self, count: int) -> str:
        return ", ".join([self.p] * count)

    def timestamp(self, value: datetime) -> object:
        if value.tzinfo is None:
            raise ValueError("naive datetime: omni-journey stores aware UTC timestamps only")
        utc = value.astimezone(UTC)
        if self.sqlite:
            return utc.replace(tzinfo=None).isoformat(" ", "microseconds")
        return utc

    @staticmethod
    def executemany(
        connection: Connection, statement: str, rows: Iterable[Sequence[object]]
    ) -> int:
        """``statement`` once per row on the DBAPI cursor, inside the connection's
        transaction and without SQLAlchemy's per-row bind processing; the rows changed."""
        cursor: Any = connection.connection.cursor()
        try:
            cursor.executemany(statement, rows)
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def insert_ignore(
        self,
        connection: Connection,
        table: str,
        columns: Sequence[tuple[str, str]],
        rows: Iterable[Sequence[object]],
        conflict: str,
    ) -> int:
        """``INSERT ... ON CONFLICT (conflict) DO NOTHING`` of many rows; the number
        inserted. ``columns`` are (name, PostgreSQL type: text, timestamptz or jsonb).

        SQLite: one ``executemany`` on the DBAPI cursor, which takes ``rows`` as they
        come (an iterator builds no list). PostgreSQL: one statement over ``unnest`` of
        one array per column (a round trip per batch, not per row), in the rows' order.
        """
        names = ", ".join(name for name, _ in columns)
        if self.sqlite:
            statement = (
                f"INSERT INTO {table} ({names}) VALUES ({self.params(len(columns))}) "
                f"ON CONFLICT ({conflict}) DO NOTHING"
            )
            return self.executemany(connection, statement, rows)
        values = [list(column) for column in zip(*rows, strict=True)]
        if not values:
            return 0
        arrays = [f"CAST(%s AS {'text' if kind == 'jsonb' else kind}[])" for _, kind in columns]
        aliases = [f"c{i}" for i in range(len(columns))]
        picks = [
            f"CAST({alias} AS jsonb)" if kind == "jsonb" else alias
            for alias, (_, kind) in zip(aliases, columns, strict=True)
        ]
        statement = (
            f"INSERT INTO {table} ({names}) SELECT {', '.join(picks)} "
            f"FROM unnest({', '.join(arrays)}) WITH ORDINALITY AS t({', '.join(aliases)}, n) "
            f"ORDER BY n ON CONFLICT ({conflict}) DO NOTHING"
        )
        return int(connection.exec_driver_sql(statement, tuple(values)).rowcount)


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
