"""What one pass keeps from one batch to the next: its connection and the facts read.

Each batch is still its own transaction, committed (or rolled back) on its own, but
they all run on one connection: on SQLite, opening a connection (WAL and pragmas) and
closing it (the last connection to close checkpoints the WAL and removes it) once a
pass rather than once a batch saved about a tenth of a large pass's CPU; PostgreSQL's
pool kept its connections anyway. The facts are a
:class:`~omni_journey.segments.fact_cache.FactCache`, told here of everything the pass
writes that they hold.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime

from sqlalchemy import Connection

from omni_journey.runner.effects import Rows
from omni_journey.runner.locks import journey_held, shard_held
from omni_journey.segments.fact_cache import FactCache
from omni_journey.store.shards import Shard

__all__ = ["PassSession"]


class PassSession:
    """One pass's connection (between transactions: idle, holding no lock) and facts."""

    def __init__(self, connection: Connection, facts: FactCache) -> None:
        self.connection = connection
        self.facts = facts

    @property
    def now(self) -> datetime:
        return self.facts.now

    def journey(self, key: str) -> AbstractContextManager[None]:
        """Journey ``key`` held for the pass's batches of it (PostgreSQL; see
        :func:`~omni_journey.runner.locks.journey_held`)."""
        return journey_held(self.connection, key)

    def shard(self, key: str, shard: Shard) -> AbstractContextManager[None]:
        """``shard`` of journey ``key`` held for the pass's batches of it (PostgreSQL;
        see :func:`~omni_journey.runner.locks.shard_held`)."""
        return shard_held(self.connection, key, shard)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One batch's transaction (SQLite: ``BEGIN IMMEDIATE``, as the store's engine
        begins every transaction), committed when the block ends without an error."""
        with self.connection.begin():
            yield self.connection

    def wrote(self, rows: Rows) -> None:
        """The facts forget what ``rows`` change: the profiles of whom attributes were
        updated, the histories of whom an event was recorded for (recent sends are read
        for every batch)."""
        facts = self.facts
        facts.updated(update.customer_id for update in rows.updates)
        facts.recorded((event.customer_id, event.name) for event in rows.events)
