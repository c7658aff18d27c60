"""The history of consent: one ``consent_changes`` row for every change of a customer's
consent on a channel, written with the ``consents`` row it explains.

``consents`` holds the answer in force; this log says when and how it came to be:
the value before (``None``: never stated) and after, and the ``source`` of the change
(``profile`` for a profile statement from an import, ``identify`` or the API,
``unsubscribe`` for a signed link, ``sms_keyword`` for SMS STOP / START). A statement
that repeats the answer in force is not a change and writes nothing. When customers
merge, the merged customer's history moves to the survivor with the rest of it
(:func:`~omni_journey.identity.profiles.move_history`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from omni_journey.store.driver import DriverSql

__all__ = ["ConsentChangeRow", "append_consent_changes"]

_COLUMNS = (
    ("customer_id", "text"),
    ("channel", "text"),
    ("previous", "boolean"),
    ("granted", "boolean"),
    ("source", "text"),
    ("at", "timestamptz"),
)


@dataclass(frozen=True, slots=True)
class ConsentChangeRow:
    """One change of one customer's consent on one channel."""

    customer_id: str
    channel: str
    previous: bool | None
    granted: bool
    source: str | None
    at: datetime


def append_consent_changes(connection: Connection, changes: Iterable[ConsentChangeRow]) -> int:
    """Append ``changes`` in the caller's transaction, in one driver statement (a profile
    import states consent for every line: SQLAlchemy's per-row binds would cost more
    than the rows); how many."""
    sql = DriverSql(connection)
    rows = [
        (c.customer_id, c.channel, c.previous, c.granted, c.source, sql.timestamp(c.at))
        for c in changes
    ]
    if rows:
        sql.insert_ignore(connection, "consent_changes", _COLUMNS, rows, "id")
    return len(rows)
