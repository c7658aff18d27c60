"""The runner's reads: enrollments and cursors for a batch, in chunks of customers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select

from omni_journey.engine.types import ACTIVE, EnrollmentState, EventView
from omni_journey.spec.models import JourneySpec
from omni_journey.store.core import ENROLLMENTS, JOURNEY_CURSORS, JOURNEY_SHARD_CURSORS
from omni_journey.store.driver import DriverSql
from omni_journey.store.shards import ALL, Shard

__all__ = [
    "active_enrollments",
    "active_versions",
    "awaiting_goal",
    "due_enrollments",
    "events_after",
    "last_entered",
    "locked_cursor",
]

_CHUNK = 500  # customers per IN (...) list


def locked_cursor(
    connection: Connection, key: str, column: str = "last_event_seq", shard: Shard = ALL
) -> Any:
    """The journey's (or its shard's) cursor column, locked for this transaction
    (PostgreSQL: FOR UPDATE; SQLite holds the write lock from BEGIN); ``None`` when the
    journey has no cursor."""
    if not shard.everyone:
        table = JOURNEY_SHARD_CURSORS
        return connection.execute(
            select(table.c[column])
            .where(
                table.c.journey_key == key,
                table.c.shards == shard.count,
                table.c.shard == shard.index,
            )
            .with_for_update()
        ).scalar_one_or_none()
    return connection.execute(
        select(JOURNEY_CURSORS.c[column])
        .where(JOURNEY_CURSORS.c.journey_key == key)
        .with_for_update()
    ).scalar_one_or_none()


def events_after(
    connection: Connection,
    seq: int,
    names: set[str],
    limit: int,
    shard: Shard = ALL,
    upto: int | None = None,
) -> list[EventView]:
    """The next ``limit`` events after ``seq`` (and at most ``upto``) with one of
    ``names``, of ``shard``'s customers, in order: read through the driver (this is the
    runner's hottest read)."""
    if not names:
        return []
    sql = DriverSql(connection)
    p = sql.p
    ordered = sorted(names)
    where = "" if shard.everyone else " AND " + shard.sql("customer_id", connection.dialect.name)
    if upto is not None:
        where += f" AND seq <= {int(upto)}"
    rows = sql.fetch(
        connection,
        f"SELECT event_id, name, customer_id, at, properties, seq FROM events "
        f"WHERE seq > {p} AND name IN ({sql.params(len(ordered))}){where} "
        f"ORDER BY seq LIMIT {p}",
        [seq, *ordered, limit],
    )
    stamp, decode = sql.read_timestamp, sql.read_json
    return [
        EventView(event_id, name, customer_id, stamp(at), decode(properties) or {}, row_seq)
        for event_id, name, customer_id, at, properties, row_seq in rows
    ]


def due_enrollments(
    connection: Connection, key: str, now: datetime, limit: int, shard: Shard = ALL
) -> list[EnrollmentState]:
    """Active enrollments of ``shard``'s customers whose wake-up is due, claimed (SKIP
    LOCKED on PostgreSQL)."""
    sql = DriverSql(connection)
    p = sql.p
    lock = "" if sql.sqlite else " FOR UPDATE SKIP LOCKED"
    mine = "" if shard.everyone else " AND " + shard.sql("customer_id", connection.dialect.name)
    return _read_enrollments(
        connection,
        f"journey_key = {p} AND state = {p} AND wake_at <= {p}{mine} "
        f"ORDER BY wake_at, id LIMIT {p}{lock}",
        [key, ACTIVE, sql.timestamp(now), limit],
    )


def active_versions(connection: Connection, key: str) -> set[int]:
    return set(
        connection.execute(
            select(ENROLLMENTS.c.journey_version_id)
            .where(and_(ENROLLMENTS.c.journey_key == key, ENROLLMENTS.c.state == ACTIVE))
            .distinct()
        ).scalars()
    )


def active_enrollments(
    connection: Connection, key: str, customers: Sequence[str]
) -> list[EnrollmentState]:
    sql = DriverSql(connection)
    p = sql.p
    states: list[EnrollmentState] = []
    for start in range(0, len(customers), _CHUNK):
        chunk = customers[start : start + _CHUNK]
        states += _read_enrollments(
            connection,
            f"journey_key = {p} AND state = {p} AND customer_id IN ({sql.params(len(chunk))}) "
            "ORDER BY id",
            [key, ACTIVE, *chunk],
        )
    return states


def awaiting_goal(
    connection: Connection, spec: JourneySpec, events: Sequence[EventView], now: datetime
) -> list[EnrollmentState]:
    """Ended enrollments whose goal window is still open, for customers with a goal
    event in this batch: a conversion after the last step still counts."""
    if spec.goal is None:
        return []
    buyers = sorted({e.customer_id for e in events if e.name == spec.goal.event})
    sql = DriverSql(connection)
    p = sql.p
    opened = sql.timestamp(now - spec.goal.within)
    states: list[EnrollmentState] = []
    for start in range(0, len(buyers), _CHUNK):
        chunk = buyers[start : start + _CHUNK]
        states += _read_enrollments(
            connection,
            f"journey_key = {p} AND state <> {p} AND customer_id IN ({sql.params(len(chunk))}) "
            f"AND entered_at >= {p} ORDER BY id",
            [spec.key, ACTIVE, *chunk, opened],
        )
    return [state for state in states if "converted" not in state.context]


_ENROLLMENT_COLUMNS = (
    "id, journey_key, journey_version_id, customer_id, step_id, state, entered_at, wake_at, "
    "holdout, trigger_event_id, context, ended_at, end_reason"
)


def _read_enrollments(
    connection: Connection, where: str, params: Sequence[object]
) -> list[EnrollmentState]:
    """Enrollments through the driver, decoded as the column types do (timestamps aware
    UTC, JSON context, booleans)."""
    sql = DriverSql(connection)
    rows = sql.fetch(
        connection, f"SELECT {_ENROLLMENT_COLUMNS} FROM enrollments WHERE {where}", params
    )
    stamp, decode = sql.read_timestamp, sql.read_json
    return [
        EnrollmentState(
            id=row[0],
            journey_key=row[1],
            version_id=row[2],
            customer_id=row[3],
            step_id=row[4],
            state=row[5],
            entered_at=stamp(row[6]),
            wake_at=None if row[7] is None else stamp(row[7]),
            holdout=bool(row[8]),
            trigger_event_id=row[9],
            context=decode(row[10]) or {},
            ended_at=None if row[11] is None else stamp(row[11]),
            end_reason=row[12],
        )
        for row in rows
    ]


def last_entered(connection: Connection, key: str, customers: Sequence[str]) -> dict[str, datetime]:
    result: dict[str, datetime] = {}
    for start in range(0, len(customers), _CHUNK):
        chunk = customers[start : start + _CHUNK]
        rows = connection.execute(
            select(ENROLLMENTS.c.customer_id, func.max(ENROLLMENTS.c.entered_at))
            .where(and_(ENROLLMENTS.c.journey_key == key, ENROLLMENTS.c.customer_id.in_(chunk)))
            .group_by(ENROLLMENTS.c.customer_id)
        ).all()
        result.update({row.customer_id: row[1] for row in rows})
    return result
