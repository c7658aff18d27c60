"""The one writer of the ``events`` table: append-only, idempotent on the event id.

Everything that records an event goes through here: ingestion (the bulk driver path),
provider feedback and opt-outs, signed-link clicks, segment entries and exits,
catalogue fan-out, purchase cycles coming due, and the events journeys emit about
themselves. An event id seen before is ignored, so a retried batch stores nothing twice.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Select, bindparam, select, update

from omni_journey.store.core import EVENTS
from omni_journey.store.driver import DriverSql
from omni_journey.store.ops import insert_ignore

__all__ = [
    "EVENT_COLUMNS",
    "append_event_rows",
    "append_events",
    "append_events_from",
    "append_new_events",
    "erase_customer_events",
    "rename_event_id",
]

# Columns of the bulk path, with their PostgreSQL types (see DriverSql.insert_ignore).
EVENT_COLUMNS = (
    ("event_id", "text"),
    ("name", "text"),
    ("customer_id", "text"),
    ("at", "timestamptz"),
    ("properties", "jsonb"),
    ("received_at", "timestamptz"),
)


def append_events(connection: Connection, events: Sequence[Mapping[str, Any]]) -> None:
    """Store ``events`` (dicts of the table's columns); ids seen before are ignored."""
    if events:
        connection.execute(insert_ignore(connection, EVENTS, "event_id"), list(events))


def append_new_events(connection: Connection, events: Sequence[Mapping[str, Any]]) -> list[str]:
    """:func:`append_events`, returning the ids actually stored (the new ones)."""
    if not events:
        return []
    statement = insert_ignore(connection, EVENTS, "event_id").returning(EVENTS.c.event_id)
    return [str(row[0]) for row in connection.execute(statement, list(events))]


def append_event_rows(connection: Connection, rows: Iterable[Sequence[object]]) -> int:
    """The bulk path: rows already bound as the driver takes them, in the order of
    :data:`EVENT_COLUMNS`; the number stored."""
    sql = DriverSql(connection)
    return sql.insert_ignore(connection, "events", EVENT_COLUMNS, rows, "event_id")


def append_events_from(connection: Connection, columns: Sequence[str], query: Select[Any]) -> int:
    """``INSERT INTO events (columns) SELECT ...`` ignoring known ids; the number stored."""
    statement = insert_ignore(connection, EVENTS, "event_id").from_select(list(columns), query)
    return int(connection.execute(statement).rowcount)


def rename_event_id(event_id: str, tombstones: Mapping[str, str]) -> str:
    """``event_id`` with every ``:``-separated part that is an erased customer's id
    (ids the product derives: ``segment.entered:<segment>:<customer>:<time>``) replaced
    by that customer's opaque id."""
    for old, new in tombstones.items():
        if old in event_id:
            event_id = re.sub(rf"(?:(?<=:)|^){re.escape(old)}(?=:|$)", new, event_id)
    return event_id


def erase_customer_events(
    connection: Connection, tombstones: Mapping[str, str], keep: Collection[str]
) -> int:
    """The events of erased customers (``tombstones``: their id -> an opaque id) move to
    the opaque id and keep only the ``keep`` properties (the references reports count
    by), their ids renamed by :func:`rename_event_id`. How many events."""
    rows = [
        {"b_seq": row.seq, "b_to": tombstones[row.customer_id],
         "b_id": rename_event_id(row.event_id, tombstones),
         "b_properties": {k: v for k, v in (row.properties or {}).items() if k in keep}}
        for chunk in _chunks(sorted(tombstones))
        for row in connection.execute(
            select(EVENTS.c.seq, EVENTS.c.customer_id, EVENTS.c.event_id, EVENTS.c.properties)
            .where(EVENTS.c.customer_id.in_(chunk))
        )
    ]  # fmt: skip
    if rows:
        connection.execute(
            update(EVENTS)
            .where(EVENTS.c.seq == bindparam("b_seq"))
            .values(customer_id=bindparam("b_to"), event_id=bindparam("b_id"),
                    properties=bindparam("b_properties")),
            rows,
        )  # fmt: skip
    return len(rows)


def _chunks(values: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
