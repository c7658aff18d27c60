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
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from sqlalchemy import Connection, Engine

from omni_journey.errors import IngestError
from omni_journey.identity import (
    CONSENT_CHANNELS,
    EVENT_IDENTITY_KINDS,
    DriverSql,
    IdentityGraph,
    IdentityKey,
    derive_customer_id,
    normalize_email,
    normalize_identity,
    normalize_phone,
    normalize_text,
    resolve_event_customers,
)
from omni_journey.service.readers import (
    Batch,
    FileFormat,
    ImportFileError,
    RecordKind,
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
_NAME_RE = re.compile(r"[a-z_]{1,32}")
_SQLITE_CACHE_KIB = 64 * 1024


@dataclass(frozen=True)
class Reject:
    index: int  # position in the input batch (0-based), or line number for files
    reason: str  # stable, PII-free code
    detail: str  # human text, never containing the email/phone/token itself


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


def _open(engine: Engine) -> Connection:
    """A connection for ingestion. SQLite: commits are durable (``synchronous=FULL``)
    and the page cache is large enough for a batch's index pages."""
    connection = engine.connect()
    if connection.dialect.name == "sqlite":
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA cache_size=-{_SQLITE_CACHE_KIB}")
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


# --- field checks ---------------------------------------------------------------------


def _text(value: object, name: str, max_length: int) -> str:
    if (
        type(value) is str
        and 0 < len(value) <= max_length
        and value.isascii()
        and value.isprintable()
        and value[0] != " "
        and value[-1] != " "
    ):
        return value
    return normalize_text(value, field=name, max_length=max_length)


class _Checked:
    """``_text`` with a memory: names and customer ids repeat within a batch."""

    def __init__(self, name: str, max_length: int) -> None:
        self._name = name
        self._max_length = max_length
        self._seen: dict[str, str] = {}

    def __call__(self, value: object) -> str:
        if type(value) is str:
            hit = self._seen.get(value)
            if hit is None:
                hit = self._seen[value] = _text(value, self._name, self._max_length)
            return hit
        return _text(value, self._name, self._max_length)


def _timestamp(value: object, name: str) -> datetime:
    if type(value) is str:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise IngestError("invalid-timestamp", f"{name} is not an ISO 8601 timestamp") from None
        if parsed.tzinfo is not None:
            return parsed
    elif isinstance(value, datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            return value
    else:
        raise IngestError("invalid-timestamp", f"{name} must be an ISO 8601 string")
    raise IngestError("invalid-timestamp", f"{name} has no time zone (add Z or +hh:mm)")


def _sqlite_timestamp(value: datetime) -> str:
    """Exactly what ``UTCDateTime`` binds on SQLite: naive UTC, microseconds."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]


def _json_text(value: object, name: str) -> str:
    if value is None:
        return "{}"
    if type(value) is not dict:
        raise IngestError("invalid-field", f"{name} must be a JSON object")
    try:
        data = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        raise IngestError("invalid-field", f"{name} is not JSON-serialisable") from None
    if b"\\u0000" in data:
        raise IngestError("invalid-field", f"{name} contains a NUL character")
    return data.decode()


def _label(key: object) -> str:
    return key if isinstance(key, str) and _NAME_RE.fullmatch(key) else "(unprintable)"


def _required(record: Mapping[str, Any], names: Sequence[str]) -> None:
    missing = [n for n in names if record.get(n) in (None, "")]
    if missing:
        raise IngestError("missing-field", f"missing {', '.join(missing)}")


# --- events -------------------------------------------------------------------------------


def _event_keys(identities: object, region: str) -> tuple[IdentityKey, ...]:
    if identities is None:
        return ()
    if not isinstance(identities, Mapping):
        raise IngestError("invalid-field", "identities must be a JSON object")
    for kind in identities:
        if kind not in EVENT_IDENTITY_KINDS:
            expected = ", ".join(EVENT_IDENTITY_KINDS)
            raise IngestError(
                "invalid-field", f"identities.{_label(kind)} is unknown; expected {expected}"
            )
    keys: list[IdentityKey] = []
    for kind in EVENT_IDENTITY_KINDS:
        value = identities.get(kind)
        if value is not None and value != "":
            field_name = f"identities.{kind}"
            keys.append(
                (kind, normalize_identity(kind, value, default_region=region, field=field_name))
            )
    return tuple(keys)


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
    checked = _check_events(records, settings.default_region, connection.dialect.name == "sqlite")
    if not checked.rows:
        return BatchResult(0, 0, checked.rejected)
    with _transaction(connection, exclusive=False):
        accepted, conflicts = _store_events(connection, checked, now)
    return BatchResult(accepted, len(checked.rows) - accepted, checked.rejected, conflicts)


@dataclass
class _CheckedEvents:
    """Events that passed the checks, as rows to insert, and the ones rejected."""

    # event_id, name, customer_id (None until resolved), at, properties (JSON text)
    rows: list[list[Any]] = field(default_factory=list)
    who: list[tuple[str | None, tuple[IdentityKey, ...]]] = field(default_factory=list)
    rejected: list[Reject] = field(default_factory=list)


def _check_events(
    records: Sequence[Mapping[str, Any]], region: str, sqlite: bool
) -> _CheckedEvents:
    """Validate a batch and build its rows (no store access)."""
    check_name = _Checked("name", 128)
    check_customer = _Checked("customer_id", 128)
    checked = _CheckedEvents()
    rows, who, rejected = checked.rows, checked.who, checked.rejected
    for index, record in enumerate(records):
        try:
            if type(record) is not dict and not isinstance(record, Mapping):
                raise IngestError("invalid-field", "an event must be a JSON object")
            event_id = record.get("id")
            name = record.get("name")
            at = record.get("at")
            if event_id is None or name is None or at is None:
                _required(record, ("id", "name", "at"))
            event_id = _text(event_id, "id", 255)
            name = check_name(name)
            when = _timestamp(at, "at")
            properties = _json_text(record.get("properties"), "properties")
            customer_id = record.get("customer_id")
            if customer_id is not None:
                customer_id = check_customer(customer_id) if customer_id != "" else None
            identities = record.get("identities")
            keys = _event_keys(identities, region) if identities else ()
            if customer_id is None and not keys:
                raise IngestError("missing-field", "missing customer_id (or an identity)")
        except IngestError as error:
            rejected.append(Reject(index, error.reason, error.detail))
            continue
        if not sqlite:
            rows.append([event_id, name, None, when, properties])
        elif (
            type(at) is str and len(at) == 27 and at[26] == "Z" and at[19] == "." and at[10] == "T"
        ):
            # "YYYY-MM-DDTHH:MM:SS.ffffffZ", checked by fromisoformat: already UTC with
            # microseconds, so its SQLite text is a slice (isoformat costs far more)
            rows.append([event_id, name, None, f"{at[:10]} {at[11:26]}", properties])
        else:
            rows.append([event_id, name, None, _sqlite_timestamp(when), properties])
        who.append((customer_id, keys))
    return checked


def _store_events(
    connection: Connection, checked: _CheckedEvents, now: datetime
) -> tuple[int, int]:
    """Resolve the customers of checked rows and insert them, inside the caller's
    transaction: (events stored, identity conflicts)."""
    resolution = resolve_event_customers(connection, checked.who, now=now)
    for row, customer_id in zip(checked.rows, resolution.customer_ids, strict=True):
        row[2] = customer_id
    accepted = _insert_events(connection, checked.rows, now)
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


def _insert_events(connection: Connection, rows: list[list[Any]], now: datetime) -> int:
    sql = DriverSql(connection)
    received = sql.timestamp(now)
    values = [(*row, received) for row in rows]
    return sql.insert_ignore(connection, "events", _EVENT_COLUMNS, values, "event_id")


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
                f"consent.{_label(channel)} must be true or false; channels: "
                + ", ".join(CONSENT_CHANNELS),
            )
    attributes = record.get("attributes") or {}
    attributes = orjson.loads(_json_text(attributes, "attributes"))
    at = record.get("at")
    profile = _Profile(
        customer_id=customer_id,
        linking=tuple(linking),
        push=push,
        columns=columns,
        consent=dict(consent),
        attributes=attributes,
        at=now if at in (None, "") else _timestamp(at, "at"),
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
    record_kind: RecordKind = kind
    batches = read_batches(path, fmt, record_kind, settings.batch_size)
    rejects = _RejectsFile(settings.rejects_dir, kind, path, now)
    # One connection for the whole file (each batch is still its own transaction), so
    # SQLite keeps its page cache warm between batches.
    with _open(engine) as connection:
        try:
            if kind == "events":
                return _import_events(connection, batches, rejects, settings, now, progress)
            return _import_profiles(connection, batches, rejects, settings, now, progress)
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


@dataclass
class _Chunk:
    """Checked events of one import transaction, and the lines rejected among them."""

    checked: _CheckedEvents = field(default_factory=_CheckedEvents)
    rejects: list[tuple[int, str, str, bytes]] = field(default_factory=list)
    bytes_read: int = 0


def _event_chunks(
    batches: Iterator[Batch], size: int, region: str, sqlite: bool
) -> Iterator[_Chunk]:
    """Read batches checked and gathered into chunks of at least ``size`` events (the
    last may be smaller). Only rows, not the parsed records, are kept between batches."""
    chunk: _Chunk | None = None
    for batch in batches:
        chunk = chunk or _Chunk()
        found = [(bad.line, bad.reason, bad.detail, bad.raw) for bad in batch.unreadable]
        if batch.records:
            checked = _check_events(batch.records, region, sqlite)
            chunk.checked.rows += checked.rows
            chunk.checked.who += checked.who
            found += [
                (batch.lines[r.index], r.reason, r.detail, batch.raws[r.index])
                for r in checked.rejected
            ]
        chunk.rejects += sorted(found, key=lambda entry: entry[0])
        chunk.bytes_read = batch.bytes_read
        if len(chunk.checked.rows) >= size:
            yield chunk
            chunk = None
    if chunk is not None:
        yield chunk


def _import_events(
    connection: Connection,
    batches: Iterator[Batch],
    rejects: _RejectsFile,
    settings: Settings,
    now: datetime,
    progress: Callable[[int], None] | None,
) -> ImportResult:
    """Events from a file, in transactions of ``settings.import_batch_size`` events
    (lines are read and checked ``settings.batch_size`` at a time, and only the rows
    built from them are kept until the transaction). The HTTP collector and the API
    keep one durable transaction per call; a file can be imported again, so its
    durability point is the chunk: every committed chunk is durable
    (``synchronous=FULL``), a crash loses at most the chunk being written, and
    importing the file again (idempotent on the event id) stores the rest."""
    sqlite = connection.dialect.name == "sqlite"
    accepted = duplicates = 0
    chunks = _event_chunks(batches, settings.import_batch_size, settings.default_region, sqlite)
    try:
        for chunk in chunks:
            rows = chunk.checked.rows
            if rows:
                with _transaction(connection, exclusive=False):
                    stored, _ = _store_events(connection, chunk.checked, now)
                accepted += stored
                duplicates += len(rows) - stored
            for line, reason, detail, raw in chunk.rejects:
                rejects.write(line, reason, detail, raw)
            if progress is not None:
                progress(chunk.bytes_read)
    finally:
        close = getattr(batches, "close", None)  # the file, whatever stopped the import
        if close is not None:
            close()
    return ImportResult(accepted, duplicates, rejects.count, rejects.path)
