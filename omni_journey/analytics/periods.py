"""Time windows and calendar buckets (UTC), written once for SQLite and PostgreSQL.

SQLite stores timestamps as UTC ISO text (see :class:`~omni_journey.store.types.
UTCDateTime`), so ``strftime``/``date`` cut them; PostgreSQL converts ``timestamptz`` to
UTC wall time first, then ``date_trunc`` (whose weeks start on Monday, like ISO's).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, func, literal

__all__ = ["BUCKETS", "Bucket", "bucket_expression", "parse_bucket", "within"]

Bucket = Literal["hour", "day", "week", "month"]
BUCKETS: tuple[Bucket, ...] = ("hour", "day", "week", "month")

_SQLITE_FORMATS: dict[str, str] = {
    "hour": "%Y-%m-%d %H:00:00",
    "day": "%Y-%m-%d 00:00:00",
    "month": "%Y-%m-01 00:00:00",
}


def within(
    column: Any, since: datetime | None, until: datetime | None
) -> list[ColumnElement[bool]]:
    """Conditions for ``since <= column < until`` (either end may be open)."""
    conditions: list[ColumnElement[bool]] = []
    if since is not None:
        conditions.append(column >= since)
    if until is not None:
        conditions.append(column < until)
    return conditions


def bucket_expression(connection: Connection, column: Any, bucket: Bucket) -> ColumnElement[Any]:
    """A SQL expression giving the start of ``column``'s UTC ``bucket``."""
    if bucket not in BUCKETS:
        raise ValueError(f"unknown bucket {bucket!r}: expected one of {', '.join(BUCKETS)}")
    if connection.dialect.name == "postgresql":
        return func.date_trunc(bucket, func.timezone("UTC", column))
    if bucket == "week":  # back to the Monday on or before the day
        return func.strftime(
            "%Y-%m-%d 00:00:00", func.date(column, literal("weekday 0"), literal("-6 days"))
        )
    return func.strftime(_SQLITE_FORMATS[bucket], column)


def parse_bucket(value: Any) -> datetime:
    """A bucket start as the database returns it, as an aware UTC datetime."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)
