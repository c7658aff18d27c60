"""The one writer of the ``suppressions`` table: addresses never to send to.

Hard bounces and complaints (provider feedback), permanent address errors (the
dispatcher), SMS STOP and unsubscribe links all suppress through here; SMS START lifts
only the suppression STOP made.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, and_, bindparam, delete, update

from omni_journey.store.core import SUPPRESSIONS
from omni_journey.store.ops import insert_ignore

__all__ = ["forget_addresses", "lift_suppression", "suppress"]

_REASON_LENGTH = 64


def suppress(connection: Connection, entries: Iterable[tuple[str, str, str]], at: datetime) -> int:
    """Suppress each ``(channel, address, reason)``; an address already suppressed for
    that reason stays as it was. Returns how many entries were given."""
    rows = [
        {"channel": channel, "address": address, "reason": reason[:_REASON_LENGTH],
         "created_at": at}
        for channel, address, reason in entries
    ]  # fmt: skip
    if rows:
        connection.execute(insert_ignore(connection, SUPPRESSIONS), rows)
    return len(rows)


def lift_suppression(connection: Connection, channel: str, address: str, reason: str) -> None:
    """Remove the suppression of ``address`` on ``channel`` made for ``reason`` only."""
    table = SUPPRESSIONS
    connection.execute(
        delete(table).where(
            and_(table.c.channel == channel, table.c.address == address, table.c.reason == reason)
        )
    )


def forget_addresses(connection: Connection, entries: Iterable[tuple[str, str]]) -> int:
    """An erased customer's suppressed ``(channel, address)`` pairs keep their place
    (and reason) on the list under an opaque ``erased:<random>`` address, so the
    suppression counts stay true; how many were suppressed."""
    table = SUPPRESSIONS
    rows = [
        {"b_channel": channel, "b_address": address, "b_new": f"erased:{uuid.uuid4().hex}"}
        for channel, address in sorted(set(entries))
    ]
    if not rows:
        return 0
    where = and_(table.c.channel == bindparam("b_channel"),
                 table.c.address == bindparam("b_address"))  # fmt: skip
    result = connection.execute(update(table).where(where).values(address=bindparam("b_new")), rows)
    return int(result.rowcount or 0)
