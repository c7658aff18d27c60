"""Engine and schema set-up: SQLite (WAL) by default, PostgreSQL in production.

``open_store(url)`` creates the engine and brings the schema to the latest Alembic
revision. Nothing here runs at import time, and Alembic is imported only when the
schema is not at the newest revision already (every command opens the store: importing
Alembic to find that out cost about 0.15 s of CPU each time).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from omni_journey.errors import OmniJourneyError
from omni_journey.store.driver import json_loads
from omni_journey.store.shards import sqlite_shard_key

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "StoreNotFoundError",
    "alembic_config",
    "create_store_engine",
    "head_revision",
    "open_existing_store",
    "open_store",
    "sqlite_path",
    "upgrade",
]

_MIGRATIONS = Path(__file__).with_name("migrations")
# ``revision = '0002'`` / ``down_revision = '0001'`` (or ``None``) in a migration file
_REVISION_LINE = re.compile(
    r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(?:'(\w+)'|\"(\w+)\"|(None))\s*$", re.M
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" hook issue BEGIN IMMEDIATE: a transaction takes the
    # write lock up front, so two passes never both read and then fail to write.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    # the customers' shard key, as PostgreSQL computes it in SQL (store/shards.py)
    dbapi_connection.create_function("omni_shard_key", 1, sqlite_shard_key, deterministic=True)


def _sqlite_begin_immediate(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (``sqlite:///.omni/omni.db``); ``None`` for another
    database or an in-memory SQLite."""
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[1] if ":///" in url else ""
    return Path(path) if path and path != ":memory:" else None


def create_store_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite files get WAL, a busy timeout and their folder."""
    kwargs.setdefault("json_deserializer", json_loads)
    kwargs.setdefault("hide_parameters", True)  # errors and logs never quote row values
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).touch(mode=0o600)  # personal data: a new store is its owner's only
        engine = create_engine(url, poolclass=NullPool, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str | None:
    """The newest migration's revision, read from the migration files' text (what
    Alembic's script directory calls the head); ``None`` when the files do not say it
    plainly (a merge, a branch, another layout): then ask Alembic."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((_MIGRATIONS / "versions").glob("*.py")):
        found = {
            match[1]: match[2] or match[3] or None
            for match in _REVISION_LINE.finditer(path.read_text(encoding="utf-8"))
        }
        revision = found.get("revision")
        if revision is None or "down_revision" not in found:
            return None
        revisions.add(revision)
        if (parent := found["down_revision"]) is not None:
            parents.add(parent)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


def _stored_revision(engine: Engine) -> str | None:
    """The revision recorded in the store (``alembic_version``), when it is exactly one;
    ``None`` when there is none (a new store) or the table cannot be read."""
    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    except DBAPIError:
        return None
    return str(rows[0][0]) if len(rows) == 1 else None


def upgrade(engine: Engine) -> None:
    """Bring the schema to the latest revision (no-op when it is there already)."""
    head = head_revision()
    if head is not None and _stored_revision(engine) == head:
        return
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = alembic_config(engine)
    head = ScriptDirectory.from_config(config).get_current_head()
    with _one_migrator(engine):
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
        if current != head:
            command.upgrade(config, "head")


#: advisory lock key (class, object) that serialises migrations on PostgreSQL
_MIGRATION_LOCK: Final = (1869442667, 0)


@contextmanager
def _one_migrator(engine: Engine) -> Iterator[None]:
    """On PostgreSQL, one process at a time reads the schema's revision and migrates:
    two commands opening an empty database at once would otherwise both create it and
    collide in ``alembic_version``. The second waits, then finds the schema at head.
    SQLite's write transactions serialise on their own."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT pg_advisory_lock(%s, %s)", _MIGRATION_LOCK)
        connection.commit()
        try:
            yield
        finally:
            connection.exec_driver_sql("SELECT pg_advisory_unlock(%s, %s)", _MIGRATION_LOCK)
            connection.commit()


def open_store(url: str, **kwargs: Any) -> Engine:
    engine = create_store_engine(url, **kwargs)
    upgrade(engine)
    return engine


class StoreNotFoundError(OmniJourneyError, FileNotFoundError):
    """A command that only reads was pointed at a SQLite store that does not exist."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(f"no store at {path}")


def open_existing_store(url: str, **kwargs: Any) -> Engine:
    """:func:`open_store` for commands that only read (``preview``, ``customers show``,
    ``report``, ...): a SQLite file that does not exist is not created, and
    :class:`StoreNotFoundError` says where it looked. An empty new store would only
    answer "no such customer" about a store that is somewhere else."""
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise StoreNotFoundError(path)
    return open_store(url, **kwargs)
