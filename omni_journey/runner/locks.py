"""Who may decide at a time: one pass per journey, one batch per capped customer.

PostgreSQL runs passes side by side, so the runner takes two kinds of lock there:

- **A journey, for its part of a pass** (:func:`journey_held`): a session-level advisory
  lock on the pass's connection, taken before the journey's first batch and released
  after its last. A second pass of the same journey waits for it, then finds the work
  done (its events read, its wake-ups advanced); passes of other journeys go on. Each
  batch still locks the journey's cursor row as well.
- **A shard of a journey** (:func:`shard_held`), when the journey runs as several shards
  (``omni-journey run --shard 2/4``): the same kind of lock on (journey, shard), held for
  the shard's part of the pass, so two workers never process one shard (hence one
  customer) of one journey at once. A worker that dies releases it with its connection,
  and the next worker started for that shard takes it over. (Shard 1/1 is the journey
  lock itself.)
- **The customers of a batch that a cap across journeys may skip**
  (:func:`hold_customers`): their ``customers`` rows, ``FOR NO KEY UPDATE`` in id order
  (so two batches wait for each other, never deadlock), until the batch commits. The
  batch reads their recent sends after taking them, so a batch of another journey that
  queued a message to the same customer has committed it, and it counts.

SQLite takes its write lock at ``BEGIN IMMEDIATE``: one batch writes at a time, and
each reads the store as the batch before it left it, so neither lock is needed there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from omni_journey.store.driver import DriverSql
from omni_journey.store.shards import Shard

__all__ = ["JOURNEY_LOCK_CLASS", "SHARD_LOCK_CLASS", "hold_customers", "journey_held", "shard_held"]

#: The first key of the journeys' advisory locks (``classid`` in ``pg_locks``; the
#: second, ``objid``, is ``hashtext(journey key)``): ``omnj`` in ASCII.
JOURNEY_LOCK_CLASS = 0x6F6D6E6A
#: The first key of the shards' advisory locks (``objid``: ``hashtext('key#2/4')``):
#: ``omns`` in ASCII.
SHARD_LOCK_CLASS = 0x6F6D6E73


@contextmanager
def journey_held(connection: Connection, key: str) -> Iterator[None]:
    """Hold journey ``key`` for the block (PostgreSQL; a no-op on SQLite): wait while
    another pass holds it. ``connection`` must be outside a transaction; the block runs
    its own transactions on it. The lock belongs to the database session, so a pass
    that dies releases it with its connection."""
    with _advisory(connection, JOURNEY_LOCK_CLASS, key):
        yield


@contextmanager
def shard_held(connection: Connection, key: str, shard: Shard) -> Iterator[None]:
    """Hold ``shard`` of journey ``key`` for the block, as :func:`journey_held` holds a
    journey (shard 1/1 is the journey)."""
    if shard.everyone:
        with journey_held(connection, key):
            yield
        return
    with _advisory(connection, SHARD_LOCK_CLASS, f"{key}#{shard}"):
        yield


@contextmanager
def _advisory(connection: Connection, classid: int, name: str) -> Iterator[None]:
    if DriverSql(connection).sqlite:
        yield
        return
    arguments = (classid, name)
    with connection.begin():
        connection.exec_driver_sql("SELECT pg_advisory_lock(%s, hashtext(%s))", arguments)
    try:
        yield
    finally:
        _release(connection, arguments)


def _release(connection: Connection, arguments: tuple[int, str]) -> None:
    """Unlock: a pooled connection outlives the pass and must not keep the lock. When
    the connection cannot say so (it broke), it is closed, which releases the lock."""
    try:
        with connection.begin():
            connection.exec_driver_sql("SELECT pg_advisory_unlock(%s, hashtext(%s))", arguments)
    except DBAPIError:
        connection.invalidate()


def hold_customers(connection: Connection, customer_ids: Sequence[str]) -> None:
    """Lock the stored customers among ``customer_ids`` until the transaction ends
    (PostgreSQL; SQLite's write lock serialises batches already). One statement, rows
    locked in id order. A customer without a stored profile has no address to send to,
    so there is nothing of theirs to lock."""
    sql = DriverSql(connection)
    if sql.sqlite or not customer_ids:
        return
    sql.fetch(
        connection,
        "SELECT id FROM customers WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE",
        [list(customer_ids)],
    )
