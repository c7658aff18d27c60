"""The runner's writes: the one writer of ``enrollments``, ``journey_log`` and
``journey_cursors``; new outbox rows go through ``delivery.outbox.queue``, attribute
changes through ``identity.changes``, events through ``store.events``.

Hot paths (the write-back of moved enrollments, the journey log) go through one driver
``executemany`` binding exactly what the column types would: SQLAlchemy's per-row bind
processing cost more than the engine itself (bench/README.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Connection, and_, bindparam, delete, insert, select, text, update

from omni_journey.delivery.outbox import queue
from omni_journey.engine.types import ACTIVE, EnrollmentState, Entered
from omni_journey.identity.changes import update_attributes
from omni_journey.runner.effects import LOG_COLUMNS, EmittedEvent, Rows
from omni_journey.runner.reads import locked_cursor
from omni_journey.runner.records import context_json
from omni_journey.store.core import (
    ENROLLMENTS,
    JOURNEY_CURSORS,
    JOURNEY_LOG,
    JOURNEY_SHARD_CURSORS,
)
from omni_journey.store.driver import DriverSql
from omni_journey.store.events import append_event_rows, rename_event_id
from omni_journey.store.ops import insert_ignore
from omni_journey.store.shards import ALL, Shard

__all__ = [
    "advance_cursor",
    "emit_events",
    "ensure_cursor",
    "erase_customer_journeys",
    "event_cursor",
    "insert_enrollments",
    "insert_log",
    "mark_scheduled",
    "move_step",
    "set_layout",
    "write_back",
    "write_rows",
]


def write_rows(connection: Connection, rows: Rows, now: datetime) -> None:
    """Everything one batch of effects decided (see :func:`runner.effects.effects_to_rows`)."""
    queue(connection, rows.messages)
    insert_log(connection, rows.log)
    emit_events(connection, rows.events, now)
    update_attributes(connection, [(u.customer_id, u.set, u.unset) for u in rows.updates], now)


_NEW_ENROLLMENT = (  # the columns a new enrollment binds (claims start empty)
    "journey_key",
    "journey_version_id",
    "customer_id",
    "step_id",
    "state",
    "wake_at",
    "entered_at",
    "updated_at",
    "ended_at",
    "end_reason",
    "holdout",
    "trigger_event_id",
    "context",
)


def insert_enrollments(
    connection: Connection, entered: Sequence[Entered], now: datetime
) -> list[EnrollmentState]:
    """Store new enrollments; their states with the ids the store gave them (through the
    driver, bound as :func:`~omni_journey.runner.records.enrollment_row` and the column
    types would)."""
    if not entered:
        return []
    sql = DriverSql(connection)
    stamp, p = sql.timestamp, sql.p
    placeholders = [p] * (len(_NEW_ENROLLMENT) - 1) + [sql.json_p]
    statement = (
        f"INSERT INTO enrollments ({', '.join(_NEW_ENROLLMENT)}) "
        f"VALUES ({', '.join(placeholders)}) RETURNING id"
    )
    updated = stamp(now)
    rows = [
        (
            s.journey_key,
            s.version_id,
            s.customer_id,
            s.step_id,
            s.state,
            None if s.wake_at is None else stamp(s.wake_at),
            stamp(s.entered_at),
            updated,
            None if s.ended_at is None else stamp(s.ended_at),
            s.end_reason,
            s.holdout,
            s.trigger_event_id,
            context_json(s.context),
        )
        for s in (effect.enrollment for effect in entered)
    ]
    ids = sql.insert_returning(connection, statement, rows)
    return [
        replace(effect.enrollment, id=new_id) for new_id, effect in zip(ids, entered, strict=True)
    ]


def write_back(connection: Connection, states: Sequence[EnrollmentState], now: datetime) -> None:
    """Update the enrollments the engine moved: one driver ``executemany``."""
    sql = DriverSql(connection)
    stamp = sql.timestamp
    updated = stamp(now)
    p = sql.p
    statement = (
        f"UPDATE enrollments SET step_id = {p}, state = {p}, wake_at = {p}, "
        f"updated_at = {p}, ended_at = {p}, end_reason = {p}, context = {sql.json_p} "
        f"WHERE id = {p}"
    )
    rows = [
        (
            s.step_id,
            s.state,
            None if s.wake_at is None else stamp(s.wake_at),
            updated,
            None if s.ended_at is None else stamp(s.ended_at),
            s.end_reason,
            context_json(s.context),
            s.id,
        )
        for s in states
    ]
    sql.executemany(connection, statement, rows)


def insert_log(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Journey-log rows built by :func:`runner.effects.log_row`, through one driver
    ``executemany``; ``detail`` as JSON text (``jsonb`` on PostgreSQL)."""
    if not rows:
        return
    sql = DriverSql(connection)
    stamp = sql.timestamp
    fields = itemgetter(*LOG_COLUMNS[:-2])
    values = [(*fields(row), _json(row["detail"]), stamp(row["at"])) for row in rows]
    placeholders = [sql.p] * (len(LOG_COLUMNS) - 2) + [sql.json_p, sql.p]
    statement = (
        f"INSERT INTO journey_log ({', '.join(LOG_COLUMNS)}) VALUES ({', '.join(placeholders)})"
    )
    sql.executemany(connection, statement, values)


def _json(value: Mapping[str, Any] | None) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str).decode()


def emit_events(connection: Connection, events: Sequence[EmittedEvent], now: datetime) -> None:
    """Record what journeys did as events (other journeys may trigger on them)."""
    if not events:
        return
    sql = DriverSql(connection)
    stamp, received = sql.timestamp, sql.timestamp(now)
    append_event_rows(  # in the order of EVENT_COLUMNS
        connection,
        [
            (e.event_id, e.name, e.customer_id, stamp(e.at), _json(e.properties), received)
            for e in events
        ],
    )


def move_step(
    connection: Connection,
    source: tuple[int, str],
    target: tuple[int, str],
    now: datetime,
    shard: Shard = ALL,
) -> None:
    """Move the active enrollments of ``shard``'s customers at (version, step)
    ``source`` to ``target`` (a journey version migration)."""
    (old_id, old_step), (new_id, new_step) = source, target
    connection.execute(
        update(ENROLLMENTS)
        .where(
            and_(
                ENROLLMENTS.c.journey_version_id == old_id,
                ENROLLMENTS.c.state == ACTIVE,
                ENROLLMENTS.c.step_id == old_step,
                text(shard.sql("enrollments.customer_id", connection.dialect.name)),
            )
        )
        .values(journey_version_id=new_id, step_id=new_step, updated_at=now)
    )


def ensure_cursor(connection: Connection, key: str, now: datetime) -> None:
    values = {"journey_key": key, "last_event_seq": 0, "updated_at": now}
    connection.execute(insert_ignore(connection, JOURNEY_CURSORS), values)


def event_cursor(connection: Connection, key: str, now: datetime, shard: Shard = ALL) -> int:
    """The journey's (or its shard's) event cursor, its row locked until the transaction
    ends; created at 0 for the journey's first batch. A pass creating it at the same
    moment makes this one wait for that batch to commit, then read where it left the
    cursor (two passes that both started from 0 would read the same events twice). A
    shard's cursor is made with its layout (:func:`set_layout`): none is an error."""
    cursor = locked_cursor(connection, key, shard=shard)
    if cursor is None and shard.everyone:
        ensure_cursor(connection, key, now)
        cursor = locked_cursor(connection, key)
    if cursor is None:
        raise LookupError(f"journey {key!r} has no cursor for shard {shard}")
    return int(cursor)


def _cursor_row(shard: Shard, key: str) -> Any:
    if shard.everyone:
        return update(JOURNEY_CURSORS).where(JOURNEY_CURSORS.c.journey_key == key)
    c = JOURNEY_SHARD_CURSORS.c
    return update(JOURNEY_SHARD_CURSORS).where(
        c.journey_key == key, c.shards == shard.count, c.shard == shard.index
    )


def advance_cursor(
    connection: Connection, key: str, seq: int, now: datetime, shard: Shard = ALL
) -> None:
    connection.execute(_cursor_row(shard, key).values(last_event_seq=seq, updated_at=now))


def mark_scheduled(connection: Connection, key: str, now: datetime, shard: Shard = ALL) -> None:
    """The scheduled audience of ``key`` (``shard``'s part of it) was served at ``now``."""
    if shard.everyone:
        ensure_cursor(connection, key, now)
    connection.execute(_cursor_row(shard, key).values(last_scheduled_at=now, updated_at=now))


def set_layout(
    connection: Connection,
    key: str,
    shards: int,
    seq: int,
    scheduled_at: datetime | None,
    now: datetime,
) -> None:
    """Journey ``key`` runs as ``shards`` shards from now on, every one of them having
    read the event stream up to ``seq`` and served its scheduled audience at
    ``scheduled_at``; the cursors of any other layout are removed. The caller holds the
    journey and every shard of the layout before (runner.layout)."""
    ensure_cursor(connection, key, now)
    values: dict[str, Any] = {"shards": shards, "updated_at": now}
    if shards == 1:
        values |= {"last_event_seq": seq, "last_scheduled_at": scheduled_at}
    connection.execute(
        update(JOURNEY_CURSORS).where(JOURNEY_CURSORS.c.journey_key == key).values(**values)
    )
    connection.execute(
        delete(JOURNEY_SHARD_CURSORS).where(JOURNEY_SHARD_CURSORS.c.journey_key == key)
    )
    if shards > 1:
        connection.execute(
            insert(JOURNEY_SHARD_CURSORS),
            [
                {"journey_key": key, "shards": shards, "shard": index, "last_event_seq": seq,
                 "last_scheduled_at": scheduled_at, "updated_at": now}
                for index in range(1, shards + 1)
            ],
        )  # fmt: skip


def erase_customer_journeys(
    connection: Connection, tombstones: Mapping[str, str], now: datetime
) -> tuple[int, int]:
    """Erased customers' enrollments and decisions (``tombstones``: id -> opaque id)
    move to the opaque id, without their context or the decisions' inputs; an active
    enrollment ends (``exited``, ``erased``). (enrollments, decisions)."""
    ids = sorted(tombstones)
    e, log = ENROLLMENTS.c, JOURNEY_LOG.c
    found = connection.execute(
        select(e.id, e.customer_id, e.trigger_event_id).where(e.customer_id.in_(ids))
    ).all()
    connection.execute(
        update(ENROLLMENTS).where(e.id.in_([r.id for r in found]), e.state == ACTIVE)
        .values(state="exited", end_reason="erased", ended_at=now, updated_at=now,
                wake_at=None, claimed_by=None, claimed_until=None)
    )  # fmt: skip
    if found:
        connection.execute(
            update(ENROLLMENTS).where(e.id == bindparam("b_id")).values(
                customer_id=bindparam("b_to"), context={}, trigger_event_id=bindparam("b_event")),
            [{"b_id": r.id, "b_to": tombstones[r.customer_id],
              "b_event": r.trigger_event_id and rename_event_id(r.trigger_event_id, tombstones)}
             for r in found],
        )  # fmt: skip
    decided = connection.execute(
        select(log.id, log.customer_id, log.event_id).where(log.customer_id.in_(ids))
    ).all()
    if decided:
        connection.execute(
            update(JOURNEY_LOG).where(log.id == bindparam("b_id")).values(
                customer_id=bindparam("b_to"), detail=None, event_id=bindparam("b_event")),
            [{"b_id": r.id, "b_to": tombstones[r.customer_id],
              "b_event": r.event_id and rename_event_id(r.event_id, tombstones)}
             for r in decided],
        )  # fmt: skip
    return len(found), len(decided)
