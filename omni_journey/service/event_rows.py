"""Events checked into rows, and an import file read and checked in a child process.

* :func:`check_events` validates a batch of CONTRACT.md events and builds their rows
  (no store access); the field checks here are shared with profile ingestion.
* :func:`event_chunks` turns an import file into :class:`Chunk` objects of at least
  ``size`` checked events (one import transaction each) with the lines rejected among
  them. With ``reader="process"`` the file is read and checked in a child process
  while the importing process resolves customers and writes the chunk before: the two
  halves of the work cost about the same CPU, so on two cores an import takes about
  half as long (bench/README.md). The child sends whole chunks through a pipe from a
  writer thread and works at most a few chunks ahead (memory stays bounded by the
  chunk size).
"""

from __future__ import annotations

import gc
import os
import pickle
import queue
import re
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from omni_journey.errors import IngestError
from omni_journey.identity import (
    EVENT_IDENTITY_KINDS,
    IdentityKey,
    normalize_identity,
    normalize_text,
)
from omni_journey.service.readers import Batch, FileFormat, ImportFileError, read_batches

__all__ = [
    "AUTO_PROCESS_MIN_BYTES",
    "CheckedEvents",
    "Chunk",
    "ImportReader",
    "Reject",
    "check_events",
    "event_chunks",
]

ImportReader = Literal["auto", "process", "inline"]

# "auto" reads a file in a child process from this size on (about 50,000 events): the
# child's start-up (a fresh interpreter importing the checks) costs about 0.3 s.
AUTO_PROCESS_MIN_BYTES = 8 * 1024 * 1024
_NAME_RE = re.compile(r"[a-z_]{1,32}")


@dataclass(frozen=True)
class Reject:
    index: int  # position in the input batch (0-based), or line number for files
    reason: str  # stable, PII-free code
    detail: str  # human text, never containing the email/phone/token itself


# --- field checks ---------------------------------------------------------------------


def text(value: object, name: str, max_length: int) -> str:
    """An id or name: the common printable-ASCII case without a call, else
    :func:`normalize_text` (which strips, and explains what is wrong)."""
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
    """``text`` with a memory: names and customer ids repeat within a batch."""

    def __init__(self, name: str, max_length: int) -> None:
        self._name = name
        self._max_length = max_length
        self._seen: dict[str, str] = {}

    def __call__(self, value: object) -> str:
        if type(value) is str:
            hit = self._seen.get(value)
            if hit is None:
                hit = self._seen[value] = text(value, self._name, self._max_length)
            return hit
        return text(value, self._name, self._max_length)


def timestamp(value: object, name: str) -> datetime:
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


def sqlite_timestamp(value: datetime) -> str:
    """Exactly what ``UTCDateTime`` binds on SQLite: naive UTC, microseconds."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]


def json_text(value: object, name: str) -> str:
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


def label(key: object) -> str:
    return key if isinstance(key, str) and _NAME_RE.fullmatch(key) else "(unprintable)"


def required(record: Mapping[str, Any], names: Sequence[str]) -> None:
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
                "invalid-field", f"identities.{label(kind)} is unknown; expected {expected}"
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


@dataclass
class CheckedEvents:
    """Events that passed the checks, column by column, and the ones rejected.

    ``ats`` hold what the ``at`` column binds (SQLite: naive UTC text; PostgreSQL: an
    aware datetime). ``customer_ids`` are None where only identities name the
    customer. Columns, not rows: they cross the pipe from the reader process at about
    a third of the cost of row lists."""

    event_ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    ats: list[Any] = field(default_factory=list)
    properties: list[str] = field(default_factory=list)
    customer_ids: list[str | None] = field(default_factory=list)
    keys: list[tuple[IdentityKey, ...]] = field(default_factory=list)
    rejected: list[Reject] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.event_ids)

    def extend(self, other: CheckedEvents) -> None:
        """Append ``other``'s rows (not its rejects, which index another batch)."""
        self.event_ids += other.event_ids
        self.names += other.names
        self.ats += other.ats
        self.properties += other.properties
        self.customer_ids += other.customer_ids
        self.keys += other.keys


def check_events(records: Sequence[Mapping[str, Any]], region: str, sqlite: bool) -> CheckedEvents:
    """Validate a batch and build its rows (no store access)."""
    check_name = _Checked("name", 128)
    check_customer = _Checked("customer_id", 128)
    checked = CheckedEvents()
    event_ids, names, ats, properties = (
        checked.event_ids,
        checked.names,
        checked.ats,
        checked.properties,
    )
    customer_ids, keys_column, rejected = checked.customer_ids, checked.keys, checked.rejected
    for index, record in enumerate(records):
        try:
            if type(record) is not dict and not isinstance(record, Mapping):
                raise IngestError("invalid-field", "an event must be a JSON object")
            event_id = record.get("id")
            name = record.get("name")
            at = record.get("at")
            if event_id is None or name is None or at is None:
                required(record, ("id", "name", "at"))
            event_id = text(event_id, "id", 255)
            name = check_name(name)
            when = timestamp(at, "at")
            props = json_text(record.get("properties"), "properties")
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
        event_ids.append(event_id)
        names.append(name)
        if not sqlite:
            ats.append(when)
        elif (
            type(at) is str and len(at) == 27 and at[26] == "Z" and at[19] == "." and at[10] == "T"
        ):
            # "YYYY-MM-DDTHH:MM:SS.ffffffZ", checked by fromisoformat: already UTC with
            # microseconds, so its SQLite text is a slice (isoformat costs far more)
            ats.append(f"{at[:10]} {at[11:26]}")
        else:
            ats.append(sqlite_timestamp(when))
        properties.append(props)
        customer_ids.append(customer_id)
        keys_column.append(keys)
    return checked


# --- import files -------------------------------------------------------------------------


@dataclass
class Chunk:
    """Checked events of one import transaction, and the lines rejected among them
    as (line, reason, detail, raw line), in line order."""

    checked: CheckedEvents = field(default_factory=CheckedEvents)
    rejects: list[tuple[int, str, str, bytes]] = field(default_factory=list)
    bytes_read: int = 0


@dataclass(frozen=True)
class _Job:
    """What the reader needs, all of it picklable for the child process."""

    path: Path
    fmt: FileFormat
    size: int  # events per chunk
    first_size: int  # events in the first chunk; each next one 1.5 times more, up to size
    batch_size: int  # lines read and checked at a time
    region: str
    sqlite: bool


def _chunks(batches: Iterator[Batch], job: _Job) -> Iterator[Chunk]:
    """Read batches checked and gathered into chunks of at least ``job.size`` events
    (from ``job.first_size`` up; the last may be smaller). Only rows, not the parsed
    records, are kept between batches."""
    chunk: Chunk | None = None
    size = job.first_size
    for batch in batches:
        chunk = chunk or Chunk()
        found = [(bad.line, bad.reason, bad.detail, bad.raw) for bad in batch.unreadable]
        if batch.records:
            checked = check_events(batch.records, job.region, job.sqlite)
            chunk.checked.extend(checked)
            found += [
                (batch.lines[r.index], r.reason, r.detail, batch.raws[r.index])
                for r in checked.rejected
            ]
        chunk.rejects += sorted(found, key=lambda entry: entry[0])
        chunk.bytes_read = batch.bytes_read
        if len(chunk.checked) >= size:
            yield chunk
            chunk, size = None, min(job.size, size * 3 // 2)
    if chunk is not None:
        yield chunk


@contextmanager
def event_chunks(
    path: Path,
    fmt: FileFormat,
    *,
    size: int,
    batch_size: int,
    region: str,
    sqlite: bool,
    reader: ImportReader = "auto",
) -> Iterator[Iterator[Chunk]]:
    """The file's events as checked chunks; the file (or the child process) is closed
    when the block exits, however it exits. Raises :class:`ImportFileError` when the
    file cannot be read at all (before the first chunk) or the reader process fails."""
    job = _Job(Path(path), fmt, size, size, batch_size, region, sqlite)
    if _in_process(job, reader):
        batches = read_batches(job.path, fmt, "events", batch_size)  # raises before any work
        try:
            yield _chunks(batches, job)
        finally:
            batches.close()
    else:
        # The importing process waits for the first chunk: make it small, so writing
        # starts after an eighth of the checks rather than all of them, and grow the
        # next ones by half each (checking 1.5x events takes the reader about as long
        # as writing 1x takes the importing process), so it never waits again.
        job = replace(job, first_size=max(1, size // 8))
        with _reader_process(job) as chunks:
            yield chunks


def _in_process(job: _Job, reader: ImportReader) -> bool:
    if reader != "auto":
        return reader == "inline"
    if not sys.executable:  # embedded: no interpreter to start
        return True
    try:
        size = job.path.stat().st_size
    except OSError:
        return True  # read_batches says what is wrong with the path
    return (os.cpu_count() or 1) < 2 or size < AUTO_PROCESS_MIN_BYTES


@contextmanager
def _reader_process(job: _Job) -> Iterator[Iterator[Chunk]]:
    # A fresh interpreter, not multiprocessing: fork is unsafe under the threads an
    # importing process may run (a progress bar, Prefect), and spawn would import the
    # parent's __main__ again (the CLI, or all of Prefect in a flow run).
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, pickle.dumps(job).hex()],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        env=_child_environment(),
    )
    assert child.stdout is not None
    try:
        yield _received(child.stdout, job)
    finally:
        child.stdout.close()  # a child still writing gets a broken pipe and exits
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _child_environment() -> dict[str, str]:
    """The child imports this very package: from a source checkout found on sys.path,
    that checkout goes on its PYTHONPATH (an installed copy it finds by itself; putting
    site-packages on PYTHONPATH could shadow the standard library)."""
    environment = dict(os.environ)
    root = Path(__file__).resolve().parents[2]
    if root.name not in ("site-packages", "dist-packages"):
        paths = [str(root), environment.get("PYTHONPATH", "")]
        environment["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return environment


_CHILD = "import sys; from omni_journey.service.event_rows import _read; _read(sys.argv[1])"
_HEADER = struct.Struct("!Q")
_AHEAD = 2  # chunks the reader keeps ready beyond the one being sent


def _received(stream: IO[bytes], job: _Job) -> Iterator[Chunk]:
    while True:
        header = stream.read(_HEADER.size)
        size = _HEADER.unpack(header)[0] if len(header) == _HEADER.size else -1
        payload = stream.read(size) if size >= 0 else b""
        if len(payload) != size:
            raise ImportFileError(
                job.path,
                "the reader process stopped before the end of the file",
                "the chunks committed so far are stored; import the file again for the rest",
            )
        # from our own child, over a pipe only the two processes hold
        message = pickle.loads(payload)  # noqa: S301
        kind = message[0]
        if kind == "chunk":
            yield message[1]
        elif kind == "end":
            return
        else:  # "error": (problem, hint) from the child
            raise ImportFileError(job.path, message[1], message[2])


def _read(argument: str) -> None:
    """The reader process: read and check the file, send each chunk, then "end".

    A thread writes to the pipe, so checking goes on while the importing process is
    busy writing to the store and not reading: the reader keeps up to
    ``_AHEAD`` chunks ready (memory stays bounded by the chunk size)."""
    # Automatic collections would cost about a third of its CPU (every batch of parsed
    # records triggers several); one per chunk frees any cycle a rejected line's
    # exception left.
    gc.disable()
    # Ctrl-C reaches the whole process group: the importing process decides what stops
    # (closing the pipe ends the reader), the reader prints no traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    job: _Job = pickle.loads(bytes.fromhex(argument))  # noqa: S301 - from the parent
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print goes to stderr, not into the pipe
    outbox: queue.Queue[bytes | None] = queue.Queue(maxsize=_AHEAD)

    def write() -> None:
        try:
            while (payload := outbox.get()) is not None:
                out.write(_HEADER.pack(len(payload)))
                out.write(payload)
                out.flush()
            out.close()
        except OSError:  # a broken pipe: the importing process stopped reading
            os._exit(0)  # nobody is left to send to; the producer may wait on the outbox

    writer = threading.Thread(target=write, name="pipe-writer")
    writer.start()

    def send(*message: object) -> None:
        outbox.put(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))

    try:
        batches = read_batches(job.path, job.fmt, "events", job.batch_size)
        for chunk in _chunks(batches, job):
            send("chunk", chunk)
            gc.collect()
    except ImportFileError as error:
        send("error", error.problem, error.hint)
    except Exception as error:  # reported to the importing process, which raises
        send("error", f"reading failed: {type(error).__name__}: {error}", None)
    else:
        send("end")
    outbox.put(None)
    writer.join()
