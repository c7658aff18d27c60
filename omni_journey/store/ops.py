"""Small statements that differ by dialect, written once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

__all__ = ["insert_ignore"]


def insert_ignore(connection: Connection, table: Any, *conflict_columns: str) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the connection's dialect.

    ``conflict_columns`` names the unique constraint (PostgreSQL needs it only when a
    partial index is the target; empty means any conflict).
    """
    target: Table = getattr(table, "__table__", table)
    if connection.dialect.name == "postgresql":
        stmt = postgresql.insert(target)
        return stmt.on_conflict_do_nothing(index_elements=list(conflict_columns) or None)
    stmt_sqlite = sqlite.insert(target)
    return stmt_sqlite.on_conflict_do_nothing(index_elements=list(conflict_columns) or None)
