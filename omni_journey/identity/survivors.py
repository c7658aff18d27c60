"""Following a merged customer to its survivor: the one chase, with the one hop limit.

A merge leaves the loser's row behind with ``merged_into`` naming the survivor (and its
email, phone and consents moved away), so an id printed on an old link, queued in the
outbox or typed into ``preview`` still finds the person. :func:`move_history` re-points
earlier losers at each new survivor, so a chain is one hop long in a healthy store; the
limit only stops a corrupt store (a cycle) from looping. It was written three times with
limits 8, 8 and 16; now the dispatcher's recipients, the collector's link pages and the
preview all come here, and agree on what a broken chain means.

A chain that ends nowhere (``merged_into`` names a row that does not exist) or never
ends within :data:`MAX_MERGE_HOPS` has **no** survivor: a merged row is a tombstone, and
sending to it, or recording on it, would be wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from sqlalchemy import Connection, select

from omni_journey.identity.lookup import _chunks, _customers

__all__ = ["MAX_MERGE_HOPS", "follow_merges", "merged_into", "survivor_of"]

MAX_MERGE_HOPS: Final = 16


def follow_merges(connection: Connection, customer_ids: Iterable[str]) -> dict[str, Any]:
    """The survivor's ``customers`` row for each id (itself when not merged).

    Ids that are unknown, or whose chain is broken or longer than :data:`MAX_MERGE_HOPS`,
    are absent. One set-based query per hop, whatever the number of ids.
    """
    wanted = sorted(set(customer_ids))
    rows: dict[str, Any] = {}
    pending = wanted
    for _ in range(MAX_MERGE_HOPS + 1):
        pending = sorted({c for c in pending if c not in rows})
        if not pending:
            break
        for chunk in _chunks(pending):
            for row in connection.execute(select(_customers).where(_customers.c.id.in_(chunk))):
                rows[str(row.id)] = row
        pending = [str(rows[c].merged_into) for c in pending if c in rows and rows[c].merged_into]
    return {cid: found for cid in wanted if (found := _survivor(rows, cid)) is not None}


def survivor_of(connection: Connection, customer_id: str) -> Any | None:
    """The survivor's row for one id; ``None`` when there is none (see the module)."""
    return follow_merges(connection, [customer_id]).get(customer_id)


def merged_into(connection: Connection, survivor: str) -> list[str]:
    """The other way round: the ids merged into ``survivor``, directly or through
    earlier merges, nearest first. One query per generation of merges."""
    found: list[str] = []
    frontier = [survivor]
    while frontier:
        rows = connection.execute(
            select(_customers.c.id).where(_customers.c.merged_into.in_(frontier))
        ).scalars()
        frontier = sorted(set(rows) - set(found) - {survivor})
        found += frontier
    return found


def _survivor(rows: Mapping[str, Any], customer_id: str) -> Any | None:
    current = customer_id
    for _ in range(MAX_MERGE_HOPS + 1):
        row = rows.get(current)
        if row is None or not row.merged_into:
            return row
        current = str(row.merged_into)
    return None
