"""Ingestion: events and customer profiles into the store, one transaction per batch.

* ``ingest_events`` is idempotent on the event id (``ON CONFLICT DO NOTHING``): a
  re-import stores nothing and counts duplicates. Events never merge customers.
* ``ingest_profiles`` applies CONTRACT.md profiles: contact columns, push tokens,
  time zone, locale, consent per channel (the latest statement wins), attributes, and
  merges the customers a profile links (see :mod:`omni_journey.identity`). A profile
  that changes nothing counts as a duplicate.
* ``import_file`` streams a JSON Lines or CSV file through them in batches of
  ``settings.batch_size`` lines (events: one transaction per
  ``settings.import_batch_size`` events) and writes every rejected line, with its
  line number and reason, to a JSON Lines file under ``settings.rejects_dir``.

A bad record is rejected with a stable reason code and the rest of its batch goes
in; a record is never stored in part. When a function returns, its batch is
committed durably (SQLite ``synchronous=FULL`` for these transactions).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from sqlalchemy import Connection, Engine

from omni_journey.errors import IngestError
from omni_journey.identity import (
    CONSENT_CHANNELS,
    DriverSql,
    IdentityGraph,
    IdentityKey,
    KnownCustomers,
    derive_customer_id,
    normalize_email,
    normalize_phone,
    normalize_text,
    resolve_event_customers,
    resolve_named_customers,
)
from omni_journey.service.event_rows import (
    CheckedEvents,
    Reject,
    check_events,
    event_chunks,
    json_text,
    label,
    timestamp,
)
from omni_journey.service.readers import (
    Batch,
    FileFormat,
    ImportFileError,
    detect_format,
    read_batches,
)
from omni_journey.settings import Settings

__all__ = [
    "BatchResult",
    "ImportFileError",
    "ImportResult",
    "Reject",
    "import_file",
    "ingest_events",
    "ingest_profiles",
]

log = logging.getLogger(__name__)

# Serialises profile batches (which may merge) against event batches on PostgreSQL.
_LOCK_KEY = 0x6F6D6E695F6964  # "omni_id"
_SQLITE_CACHE_KIB = 64 * 1024
_BULK_CHECKPOINT_PAGES = 25_000  # of 4 KiB: about 100 MiB of WAL


@dataclass(frozen=True)
class BatchResult:
    accepted: int  # newly stored (profiles: changed the store)
    duplicates: int  # already stored: same event id, or a profile that changed nothing
    rejected: list[Reject]
    identity_conflicts: int = 0  # event identities owned by another customer, left alone


@dataclass(frozen=True)
class ImportResult:
    accepted: int
    duplicates: int
    rejected: int
    rejects_path: Path | None


def _open(engine: Engine, *, bulk: bool = False) -> Connection:
    """A connection for ingestion. SQLite: commits are durable (``synchronous=FULL``)
    and the page cache is large enough for a batch's index pages. ``bulk`` (a file
    import) doubles the cache and checkpoints the WAL every ~100 MiB instead of at
    every commit: an index page that several chunks touch is then written to the
    database file once, not once per chunk (-15 % time per million events)."""
    connection = engine.connect()
    if connection.dialect.name == "sqlite":
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA cache_size=-{_SQLITE_CACHE_KIB * (2 if bulk else 1)}")
        if bulk:
            cursor.execute(f"PRAGMA wal_autocheckpoint={_BULK_CHECKPOINT_PAGES}")
        cursor.close()
    return connection


@contextmanager
def _transaction(connection: Connection, *, exclusive: bool) -> Iterator[None]:
    """One write transaction. SQLite takes the write lock up front (``BEGIN
    IMMEDIATE``, by the store's begin hook or here), so a batch never fails to upgrade
    a read lock halfway. PostgreSQL takes an advisory lock, exclusive for profiles
    (they merge), shared for events."""
    with connection.begin():
        if connection.dialect.name == "sqlite":
            dbapi: Any = connection.connection.dbapi_connection
            if not dbapi.in_transaction:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
            connection.exec_driver_sql(f"SELECT {function}(%s)", (_LOCK_KEY,))
        yield


# --- events -------------------------------------------------------------------------------


def ingest_events(
    engine: Engine, records: Sequence[Mapping[str, Any]], *, now: datetime, settings: Settings
) -> BatchResult:
    """Store a batch of CONTRACT.md events; see the module docstring."""
    with _open(engine) as connection:
        return _ingest_events(connection, records, now, settings)


def _ingest_events(
    connection: Connection,
    records: Sequence[Mapping[str, Any]],
    now: datetime,
    settings: Settings,
) -> BatchResult:
    checked = check_events(records, settings.default_region, connection.dialect.name == "sqlite")
    if not checked:
        return BatchResult(0, 0, checked.rejected)
    with _transaction(connection, exclusive=False):
        accepted, conflicts = _store_events(connection, checked, now)
    return BatchResult(accepted, len(checked) - accepted, checked.rejected, conflicts)


def _store_events(
    connection: Connection,
    checked: CheckedEvents,
    now: datetime,
    known: KnownCustomers | None = None,
) -> tuple[int, int]:
    """Resolve the customers of checked rows and insert them, inside the caller's
    transaction: (events stored, identity conflicts)."""
    if any(checked.keys) or None in checked.customer_ids:
        who = list(zip(checked.customer_ids, checked.keys, strict=True))
        resolution = resolve_event_customers(connection, who, now=now)
    else:  # every event names its customer: no identities to attach
        named = cast(list[str], checked.customer_ids)
        resolution = resolve_named_customers(connection, named, now=now, known=known)
    sql = DriverSql(connection)
    rows = zip(  # built one at a time, as executemany takes them
        checked.event_ids,
        checked.names,
        resolution.customer_ids,
        checked.ats,
        checked.properties,
        repeat(sql.timestamp(now)),
        strict=False,  # repeat() never ends
    )
    accepted = sql.insert_ignore(connection, "events", _EVENT_COLUMNS, rows, "event_id")
    if resolution.conflicts:
        log.warning(
            "%d event identities belong to another customer and were left in place",
            resolution.conflicts,
        )
    return accepted, resolution.conflicts


_EVENT_COLUMNS = (
    ("event_id", "text"),
    ("name", "text"),
    ("customer_id", "text"),
    ("at", "timestamptz"),
    ("properties", "jsonb"),
    ("received_at", "timestamptz"),
)


# --- profiles -----------------------------------------------------------------------------


@dataclass
class _Profile:
    customer_id: str | None
    linking: tuple[IdentityKey, ...]
    push: tuple[IdentityKey, ...]
    columns: dict[str, str | None]
    consent: dict[str, bool]
    attributes: dict[str, Any]
    at: datetime
    seeds: list[str] = field(default_factory=list)


def _zone(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise IngestError("invalid-timezone", "timezone must be an IANA name such as Europe/Berlin")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise IngestError("invalid-timezone", "timezone is not a known IANA time zone") from None
    return value


def _parse_profile(record: Mapping[str, Any], region: str, now: datetime) -> _Profile:
    if not isinstance(record, Mapping):
        raise IngestError("invalid-field", "a profile must be a JSON object")
    customer_id = record.get("customer_id")
    if customer_id is not None and customer_id != "":
        customer_id = normalize_text(customer_id, field="customer_id", max_length=128)
    else:
        customer_id = None
    email = record.get("email")
    email = None if email in (None, "") else normalize_email(email)
    phone = record.get("phone")
    phone = None if phone in (None, "") else normalize_phone(phone, region)
    external_id = record.get("external_id")
    anonymous_id = record.get("anonymous_id")
    candidates = {
        "customer_id": customer_id,
        "external_id": None
        if external_id in (None, "")
        else normalize_text(external_id, field="external_id"),
        "email": email,
        "phone": phone,
        "anonymous_id": None
        if anonymous_id in (None, "")
        else normalize_text(anonymous_id, field="anonymous_id"),
    }
    linking = [(kind, value) for kind, value in candidates.items() if value is not None]
    if not linking:
        raise IngestError(
            "missing-field", "missing customer_id (or email, phone, external_id, anonymous_id)"
        )
    tokens = record.get("push_tokens") or []
    if not isinstance(tokens, list):
        raise IngestError("invalid-field", "push_tokens must be a list of strings")
    push = tuple(
        dict.fromkeys(("push_token", normalize_text(t, field="push_tokens")) for t in tokens)
    )
    timezone = record.get("timezone")
    locale = record.get("locale")
    columns = {
        "email": email,
        "phone": phone,
        "timezone": None if timezone in (None, "") else _zone(timezone),
        "locale": None
        if locale in (None, "")
        else normalize_text(locale, field="locale", max_length=35),
    }
    consent = record.get("consent") or {}
    if not isinstance(consent, Mapping):
        raise IngestError("invalid-consent", "consent must be an object of channel: true/false")
    for channel, granted in consent.items():
        if channel not in CONSENT_CHANNELS or not isinstance(granted, bool):
            raise IngestError(
                "invalid-consent",
                f"consent.{label(channel)} must be true or false; channels: "
                + ", ".join(CONSENT_CHANNELS),
            )
    attributes = record.get("attributes") or {}
    attributes = orjson.loads(json_text(attributes, "attributes"))
    at = record.get("at")
    profile = _Profile(
        customer_id=customer_id,
        linking=tuple(linking),
        push=push,
        columns=columns,
        consent=dict(consent),
        attributes=attributes,
        at=now if at in (None, "") else timestamp(at, "at"),
    )
    if customer_id is None:
        profile.seeds.append(derive_customer_id(linking[0]))
    return profile


def ingest_profiles(
    engine: Engine, records: Sequence[Mapping[str, Any]], *, now: datetime, settings: Settings
) -> BatchResult:
    """Apply a batch of CONTRACT.md profiles (plus ``anonymous_id`` / ``external_id``,
    and an optional ``at`` for when the statement was made, default ``now``)."""
    with _open(engine) as connection:
        return _ingest_profiles(connection, records, now, settings)


def _ingest_profiles(
    connection: Connection,
    records: Sequence[Mapping[str, Any]],
    now: datetime,
    settings: Settings,
) -> BatchResult:
    rejected: list[Reject] = []
    profiles: list[_Profile] = []
    for index, record in enumerate(records):
        try:
            profiles.append(_parse_profile(record, settings.default_region, now))
        except IngestError as error:
            rejected.append(Reject(index, error.reason, error.detail))
    if not profiles:
        return BatchResult(0, 0, rejected)

    accepted = 0
    with _transaction(connection, exclusive=True):
        graph = IdentityGraph.load(
            connection,
            keys=[k for p in profiles for k in (*p.linking, *p.push)],
            customer_ids=[c for p in profiles for c in (p.customer_id, *p.seeds) if c],
            now=now,
        )
        for profile in profiles:
            customer, changed = graph.link(profile.customer_id, profile.linking, profile.push)
            for column, value in profile.columns.items():
                changed |= customer.set_column(column, value)
            changed |= customer.update_attributes(profile.attributes)
            for channel, granted in profile.consent.items():
                changed |= customer.state_consent(channel, granted, profile.at, "profile")
            accepted += changed
        graph.save(connection)
    if graph.merges or graph.moves:
        log.info("profiles merged %d customers, moved %d push tokens", graph.merges, graph.moves)
    return BatchResult(accepted, len(profiles) - accepted, rejected)


# --- files --------------------------------------------------------------------------------


class _RejectsFile:
    """The JSON Lines rejects file, created on the first reject."""

    def __init__(self, directory: Path, kind: str, source: Path, now: datetime) -> None:
        stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        self._directory = directory
        self._stem = f"{kind}-{source.stem}-{stamp}"
        self.path: Path | None = None
        self._handle: Any = None
        self.count = 0

    def write(self, line: int, reason: str, detail: str, raw: bytes) -> None:
        if self._handle is None:
            self._directory.mkdir(parents=True, exist_ok=True)
            for attempt in range(1000):
                suffix = f"-{attempt}" if attempt else ""
                candidate = self._directory / f"{self._stem}{suffix}.rejects.jsonl"
                try:
                    self._handle = candidate.open("xb")
                except FileExistsError:
                    continue
                self.path = candidate
                break
            else:  # pragma: no cover - a thousand imports in one second
                raise ImportFileError(self._directory, "cannot create a rejects file")
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        entry = {"line": line, "reason": reason, "detail": detail, "raw": text}
        self._handle.write(orjson.dumps(entry) + b"\n")
        self.count += 1

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()


def import_file(
    engine: Engine,
    path: Path,
    kind: Literal["events", "customers"],
    *,
    settings: Settings,
    now: datetime,
    progress: Callable[[int], None] | None = None,
    file_format: str | None = None,
) -> ImportResult:
    """Stream ``path`` (JSON Lines or CSV) into the store in batches.

    Customers: one transaction per ``settings.batch_size`` lines. Events: one per
    ``settings.import_batch_size`` events (see :func:`_import_events`).

    ``progress`` is called after each transaction with the number of bytes read so
    far. Raises :class:`ImportFileError` when the file cannot be read at all; bad
    lines never stop an import.
    """
    path = Path(path)
    fmt: FileFormat = detect_format(path, file_format)
    rejects = _RejectsFile(settings.rejects_dir, kind, path, now)
    # One connection for the whole file (each batch is still its own transaction), so
    # SQLite keeps its page cache warm between batches.
    with _open(engine, bulk=True) as connection:
        try:
            if kind == "events":
                return _import_events(connection, path, fmt, rejects, settings, now, progress)
            batches = read_batches(path, fmt, "customers", settings.batch_size)
            try:
                return _import_profiles(connection, batches, rejects, settings, now, progress)
            finally:
                batches.close()
        finally:
            rejects.close()


def _import_profiles(
    connection: Connection,
    batches: Iterator[Batch],
    rejects: _RejectsFile,
    settings: Settings,
    now: datetime,
    progress: Callable[[int], None] | None,
) -> ImportResult:
    accepted = duplicates = 0
    for batch in batches:
        found = [(bad.line, bad.reason, bad.detail, bad.raw) for bad in batch.unreadable]
        if batch.records:
            result = _ingest_profiles(connection, batch.records, now, settings)
            accepted += result.accepted
            duplicates += result.duplicates
            found += [
                (batch.lines[r.index], r.reason, r.detail, batch.raws[r.index])
                for r in result.rejected
            ]
        for line, reason, detail, raw in sorted(found, key=lambda entry: entry[0]):
            rejects.write(line, reason, detail, raw)
        if progress is not None:
            progress(batch.bytes_read)
    return ImportResult(accepted, duplicates, rejects.count, rejects.path)


def _import_events(
    connection: Connection,
    path: Path,
    fmt: FileFormat,
    rejects: _RejectsFile,
    settings: Settings,
    now: datetime,
    progress: Callable[[int], None] | None,
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
    known = KnownCustomers()
    with event_chunks(
        path,
        fmt,
        size=settings.import_batch_size,
        batch_size=settings.batch_size,
        region=settings.default_region,
        sqlite=connection.dialect.name == "sqlite",
        reader=settings.import_reader,
    ) as chunks:
        for chunk in chunks:
            if chunk.checked:
                with _transaction(connection, exclusive=False):
                    known.start(connection)
                    stored, _ = _store_events(connection, chunk.checked, now, known)
                accepted += stored
                duplicates += len(chunk.checked) - stored
            for line, reason, detail, raw in chunk.rejects:
                rejects.write(line, reason, detail, raw)
            if progress is not None:
                progress(chunk.bytes_read)
    return ImportResult(accepted, duplicates, rejects.count, rejects.path)
