"""An import file read and checked into chunks, inline or in a child process.

:func:`import_chunks` turns an import file into :class:`Chunk` objects, one import
transaction each, with the lines rejected among them: events in chunks of at least
``size`` checked events, customer profiles one chunk per batch of lines (checking a
profile, its email and phone above all, costs more CPU than storing it).

With ``reader="process"`` the file is read and checked in a child process while the
importing process resolves customers and writes the chunk before: for events the two
halves of the work cost about the same CPU, so on two cores an import takes about
half as long (bench/README.md). The child sends whole chunks through a pipe from a writer
thread and works at most a few chunks ahead (memory stays bounded by the chunk size).

The child runs ``_read`` from this module by its dotted path (``_CHILD``), so this
module, like :mod:`omni_journey.ingest.event_rows` and
:mod:`omni_journey.ingest.profile_rows` (imported only for a customers file), imports
nothing of the store.
"""

from __future__ import annotations

import gc
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from omni_journey.ingest.event_rows import CheckedEvents, check_events
from omni_journey.ingest.readers import Batch, FileFormat, ImportFileError, read_batches
from omni_journey.ingest.record_keys import UnknownKeys, describe, known_keys, unknown_keys

if TYPE_CHECKING:
    from omni_journey.identity.statements import Profile

__all__ = ["AUTO_PROCESS_MIN_BYTES", "Chunk", "ImportReader", "import_chunks"]

ImportReader = Literal["auto", "process", "inline"]

# "auto" reads a file in a child process from this size on (about 50,000 events): the
# child's start-up (a fresh interpreter importing the checks) costs about 0.3 s.
AUTO_PROCESS_MIN_BYTES = 8 * 1024 * 1024


@dataclass
class Chunk:
    """Checked events (or profiles) of one import transaction, and the lines rejected
    among them as (line, reason, detail, raw line), in line order."""

    checked: CheckedEvents = field(default_factory=CheckedEvents)
    profiles: list[Profile] = field(default_factory=list)
    sources: list[tuple[int, bytes]] = field(default_factory=list)  # each profile's line
    rejects: list[tuple[int, str, str, bytes]] = field(default_factory=list)
    bytes_read: int = 0
    unknown: UnknownKeys = field(default_factory=UnknownKeys)  # keys read by nothing


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
    kind: Literal["events", "customers"] = "events"
    now: datetime | None = None  # customers: when a profile without "at" was stated
    strict: bool = False  # a line with a key omni-journey does not read is rejected


def _profile_chunks(batches: Iterator[Batch], job: _Job) -> Iterator[Chunk]:
    """One chunk per batch of lines: a batch of profiles is one transaction."""
    from omni_journey.ingest.profile_rows import parse_profiles  # not for events

    assert job.now is not None
    for batch in batches:
        chunk = Chunk(bytes_read=batch.bytes_read)
        found = [(bad.line, bad.reason, bad.detail, bad.raw) for bad in batch.unreadable]
        if batch.records:
            records, lines, raws = _screened(batch, job, chunk.unknown, found)
            chunk.profiles, rejected = parse_profiles(records, job.region, job.now)
            found += [(lines[r.index], r.reason, r.detail, raws[r.index]) for r in rejected]
            refused = {r.index for r in rejected}
            chunk.sources = [
                (line, raw)
                for index, (line, raw) in enumerate(zip(lines, raws, strict=True))
                if index not in refused
            ]  # the line and text of a profile storing may still refuse (a conflict)
        chunk.rejects = sorted(found, key=lambda entry: entry[0])
        yield chunk


def _screened(
    batch: Batch, job: _Job, unknown: UnknownKeys, found: list[tuple[int, str, str, bytes]]
) -> tuple[list[dict[str, Any]], list[int], list[bytes]]:
    """The batch's records (with their lines and text) to check. A record with a key
    omni-journey does not read is counted in ``unknown`` and kept, or, when the job is
    strict, rejected as ``unknown-field`` into ``found`` and left out. Costs one subset
    test per record when every key is known."""
    known = known_keys(job.kind)
    records = batch.records
    odd = [index for index, record in enumerate(records) if not record.keys() <= known]
    if not odd:
        return records, batch.lines, batch.raws
    if not job.strict:
        for index in odd:
            unknown.add(batch.lines[index], unknown_keys(records[index], known))
        return records, batch.lines, batch.raws
    for index in odd:
        keys = unknown_keys(records[index], known)
        detail = "unknown keys: " + describe(keys, job.kind)
        found.append((batch.lines[index], "unknown-field", detail, batch.raws[index]))
    dropped = set(odd)
    kept = [index for index in range(len(records)) if index not in dropped]
    return (
        [records[index] for index in kept],
        [batch.lines[index] for index in kept],
        [batch.raws[index] for index in kept],
    )


def _chunks(batches: Iterator[Batch], job: _Job) -> Iterator[Chunk]:
    """Read batches checked and gathered into chunks of at least ``job.size`` events
    (from ``job.first_size`` up; the last may be smaller). Only rows, not the parsed
    records, are kept between batches."""
    if job.kind == "customers":
        yield from _profile_chunks(batches, job)
        return
    chunk: Chunk | None = None
    size = job.first_size
    for batch in batches:
        chunk = chunk or Chunk()
        found = [(bad.line, bad.reason, bad.detail, bad.raw) for bad in batch.unreadable]
        if batch.records:
            records, lines, raws = _screened(batch, job, chunk.unknown, found)
            checked = check_events(records, job.region, job.sqlite)
            chunk.checked.extend(checked)
            found += [(lines[r.index], r.reason, r.detail, raws[r.index]) for r in checked.rejected]
        chunk.rejects += sorted(found, key=lambda entry: entry[0])
        chunk.bytes_read = batch.bytes_read
        if len(chunk.checked) >= size:
            yield chunk
            chunk, size = None, min(job.size, size * 3 // 2)
    if chunk is not None:
        yield chunk


@contextmanager
def import_chunks(
    path: Path,
    fmt: FileFormat,
    *,
    size: int,
    batch_size: int,
    region: str,
    sqlite: bool,
    reader: ImportReader = "auto",
    kind: Literal["events", "customers"] = "events",
    now: datetime | None = None,
    strict: bool = False,
) -> Iterator[Iterator[Chunk]]:
    """The file's events (or, ``kind="customers"``, profiles stated at ``now`` unless
    they say when) as checked chunks; the file (or the child process) is closed
    when the block exits, however it exits. Raises :class:`ImportFileError` when the
    file cannot be read at all (before the first chunk) or the reader process fails.
    Each chunk counts its lines with keys omni-journey does not read (``strict``: those
    lines are rejected as ``unknown-field`` instead)."""
    job = _Job(Path(path), fmt, size, size, batch_size, region, sqlite, kind, now, strict)
    if _in_process(job, reader):
        batches = read_batches(job.path, fmt, kind, batch_size)  # raises before any work
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


_CHILD = "import sys; from omni_journey.ingest.import_chunks import _read; _read(sys.argv[1])"
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
        batches = read_batches(job.path, job.fmt, job.kind, job.batch_size)
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
