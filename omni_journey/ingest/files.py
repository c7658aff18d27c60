"""Import files: a JSON Lines or CSV file streamed into the store in batches.

Customers go in one transaction per ``settings.batch_size`` lines; events one per
``settings.import_batch_size`` events, read and checked (maybe in a reader process,
see :mod:`omni_journey.ingest.import_chunks`) apart from the writing. Every rejected
line, with its line number and reason, goes to a JSON Lines file under
``settings.rejects_dir``: bad lines never stop an import, and a file that cannot be
read at all raises :class:`ImportFileError` before anything is stored. A line with a
top-level key omni-journey does not read is imported without it and counted in the
result (``strict=True``: rejected as ``unknown-field``), never dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Literal

from sqlalchemy import Connection, Engine

from omni_journey.identity import KnownCustomers
from omni_journey.ingest.event_rows import Reject
from omni_journey.ingest.events import store_events
from omni_journey.ingest.import_chunks import Chunk, import_chunks
from omni_journey.ingest.profiles import store_profiles
from omni_journey.ingest.readers import (
    FileFormat,
    detect_format,
)
from omni_journey.ingest.rejects import RejectsFile
from omni_journey.ingest.results import ImportResult, UnknownKeys
from omni_journey.ingest.transactions import open_connection, write_transaction
from omni_journey.settings import Settings

__all__ = ["import_file"]


def import_file(
    engine: Engine,
    path: Path,
    kind: Literal["events", "customers"],
    *,
    settings: Settings,
    now: datetime,
    progress: Callable[[int], None] | None = None,
    file_format: str | None = None,
    strict: bool = False,
) -> ImportResult:
    """Stream ``path`` (JSON Lines or CSV) into the store in batches.

    Customers: one transaction per ``settings.batch_size`` lines. Events: one per
    ``settings.import_batch_size`` events (see :func:`_import_events`).

    ``progress`` is called after each transaction with the number of bytes read so
    far. Raises :class:`ImportFileError` when the file cannot be read at all; bad
    lines never stop an import. ``strict``: a line with a top-level key omni-journey
    does not read is rejected (``unknown-field``) rather than imported without it.
    """
    path = Path(path)
    fmt: FileFormat = detect_format(path, file_format)
    rejects = RejectsFile(settings.rejects_dir, kind, path, now, settings.rejects_retention_days)
    # One connection for the whole file (each batch is still its own transaction), so
    # SQLite keeps its page cache warm between batches.
    with open_connection(engine, bulk=True) as connection:
        try:
            if kind == "events":
                return _import_events(
                    connection, path, fmt, rejects, settings, now, progress, strict
                )
            return _import_profiles(connection, path, fmt, rejects, settings, now, progress, strict)
        finally:
            rejects.close()


def _import_profiles(
    connection: Connection,
    path: Path,
    fmt: FileFormat,
    rejects: RejectsFile,
    settings: Settings,
    now: datetime,
    progress: Callable[[int], None] | None,
    strict: bool,
) -> ImportResult:
    """Profiles from a file, one transaction per ``settings.batch_size`` lines. Lines
    are read and checked in a reader process per ``settings.import_reader``, as events
    are: normalising emails and phone numbers costs about twice what storing the
    profiles does, so on two cores checking the next batch while this one is written
    takes most of it off the clock."""
    accepted = duplicates = 0
    unknown = UnknownKeys()
    with import_chunks(
        path,
        fmt,
        size=settings.batch_size,
        batch_size=settings.batch_size,
        region=settings.default_region,
        sqlite=connection.dialect.name == "sqlite",
        reader=settings.import_reader,
        kind="customers",
        now=now,
        strict=strict,
    ) as chunks:
        for chunk in chunks:
            unknown.merge(chunk.unknown)
            found = chunk.rejects
            if chunk.profiles:
                stored, conflicts = store_profiles(connection, chunk.profiles, now)
                accepted += stored
                duplicates += len(chunk.profiles) - stored - len(conflicts)
                if conflicts:
                    found = sorted([*found, *_lines_of(chunk, conflicts)], key=lambda e: e[0])
            for line, reason, detail, raw in found:
                rejects.write(line, reason, detail, raw)
            if progress is not None:
                progress(chunk.bytes_read)
    return ImportResult(accepted, duplicates, rejects.count, rejects.path, unknown)


def _lines_of(chunk: Chunk, refused: list[Reject]) -> list[tuple[int, str, str, bytes]]:
    """Profiles refused while storing, as rejects-file entries of their lines."""
    return [
        (chunk.sources[r.index][0], r.reason, r.detail, chunk.sources[r.index][1]) for r in refused
    ]


def _import_events(
    connection: Connection,
    path: Path,
    fmt: FileFormat,
    rejects: RejectsFile,
    settings: Settings,
    now: datetime,
    progress: Callable[[int], None] | None,
    strict: bool,
) -> ImportResult:
    """Events from a file, in transactions of ``settings.import_batch_size`` events
    (lines are read and checked ``settings.batch_size`` at a time, in a reader process
    per ``settings.import_reader``, and only the rows built from them are kept until
    the transaction). The HTTP collector and the API keep one durable transaction per
    call; a file can be imported again, so its durability point is the chunk: every
    committed chunk is durable (``synchronous=FULL``), a crash loses at most the chunk
    being written, and importing the file again (idempotent on the event id) stores
    the rest."""
    accepted = duplicates = 0
    unknown = UnknownKeys()
    known = KnownCustomers()
    with import_chunks(
        path,
        fmt,
        size=settings.import_batch_size,
        batch_size=settings.batch_size,
        region=settings.default_region,
        sqlite=connection.dialect.name == "sqlite",
        reader=settings.import_reader,
        strict=strict,
    ) as chunks:
        for chunk in chunks:
            unknown.merge(chunk.unknown)
            if chunk.checked:
                with write_transaction(connection, exclusive=False):
                    known.start(connection)
                    stored, _ = store_events(connection, chunk.checked, now, known)
                accepted += stored
                duplicates += len(chunk.checked) - stored
            for line, reason, detail, raw in chunk.rejects:
                rejects.write(line, reason, detail, raw)
            if progress is not None:
                progress(chunk.bytes_read)
    return ImportResult(accepted, duplicates, rejects.count, rejects.path, unknown)
