"""Raw driver SQL for the bulk paths: placeholders and values that bind exactly what
the store's column types would, without SQLAlchemy's per-row processing.

Ingestion, the runner's write-back and the journey log write through it; the profile
showed SQLAlchemy's per-row bind processing costing more than the engine itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection

__all__ = ["DriverSql", "json_loads"]


def json_loads(text: str | bytes) -> Any:
    """JSON read with orjson (several times faster than ``json.loads``), and
    ``json.loads`` for what orjson refuses but ``json.dumps`` may have written (``NaN``,
    integers past 64 bits)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


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

    def read_timestamp(self, value: Any) -> datetime:
        """A (non-null) timestamp column as the driver returns it -> an aware UTC
        datetime (what ``UTCDateTime`` gives through SQLAlchemy)."""
        if self.sqlite:
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        return value.astimezone(UTC)  # type: ignore[no-any-return]

    @staticmethod
    def read_json(value: Any) -> Any:
        """A JSON column as the driver returns it (text on SQLite, decoded on PostgreSQL)."""
        if isinstance(value, str | bytes):
            return json_loads(value)
        return value

    def fetch(self, connection: Connection, statement: str, params: Sequence[object]) -> list[Any]:
        """Rows of ``statement`` as plain DBAPI tuples, in the connection's transaction."""
        cursor: Any = connection.connection.cursor()
        try:
            cursor.execute(statement, tuple(params))
            return list(cursor.fetchall())
        finally:
            cursor.close()

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

    def insert_returning(
        self, connection: Connection, statement: str, rows: Sequence[Sequence[object]]
    ) -> list[Any]:
        """``statement`` (an ``INSERT .. RETURNING`` of one column) once per row, inside
        the connection's transaction; the value it returned for each row, in the rows'
        order. SQLite: one ``execute`` per row on one cursor (no round trips to save);
        PostgreSQL: one pipelined ``executemany`` that keeps every row's result."""
        if not rows:
            return []
        cursor: Any = connection.connection.cursor()
        try:
            if self.sqlite:
                returned = []
                for row in rows:
                    cursor.execute(statement, row)
                    returned.append(cursor.fetchone()[0])
                return returned
            cursor.executemany(statement, rows, returning=True)
            returned = [cursor.fetchone()[0]]
            while cursor.nextset():
                returned.append(cursor.fetchone()[0])
            return returned
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
