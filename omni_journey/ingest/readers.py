"""Streaming readers for import files: JSON Lines and CSV, in batches, constant memory.

A reader yields :class:`Batch` objects of at most ``size`` lines. Each record keeps its
line number and its original text, so a record the ingestion rejects later can be
written to the rejects file as it was. Lines that cannot even be read (bad JSON, a
CSV row with the wrong number of cells, bad UTF-8) are reported in the batch as
``unreadable``; they never stop the file.

CSV columns (cells are strings; an empty cell is an absent field):

* events: ``id``, ``name``, ``at``, ``customer_id``, ``properties.<key>``,
  ``identities.<kind>``;
* customers: ``customer_id``, ``email``, ``phone``, ``push_tokens`` (a JSON array or
  ``;``-separated), ``timezone``, ``locale``, ``external_id``, ``anonymous_id``, ``at``,
  ``merge`` and ``consent.<channel>`` (true/false, yes/no, 1/0), ``attributes.<key>``.

``properties.*`` and ``attributes.*`` cells are read as JSON when they parse as JSON
(``24.0``, ``true``, ``[1, 2]``) and as text otherwise; every other cell is text.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from omni_journey.errors import OmniJourneyError
from omni_journey.ingest.limits import loads as exact_loads

__all__ = [
    "Batch",
    "FileFormat",
    "ImportFileError",
    "RecordKind",
    "Unreadable",
    "detect_format",
    "read_batches",
    "read_records",
]

FileFormat = Literal["jsonl", "csv"]
RecordKind = Literal["events", "customers"]

_EXTENSIONS: dict[str, FileFormat] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
_EXTENSIONS[".csv"] = "csv"

_EVENT_COLUMNS = ("id", "name", "at", "customer_id")
_EVENT_PREFIXES = ("properties", "identities")
_PROFILE_COLUMNS = (
    "customer_id",
    "email",
    "phone",
    "push_tokens",
    "timezone",
    "locale",
    "external_id",
    "anonymous_id",
    "at",
    "merge",
)
_PROFILE_PREFIXES = ("consent", "attributes")
_TRUE = frozenset({"true", "yes", "1", "y"})
_FALSE = frozenset({"false", "no", "0", "n"})
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.\- ]{1,64}")


class ImportFileError(OmniJourneyError, ValueError):
    """The file as a whole cannot be imported (unreadable, unknown format or columns)."""

    def __init__(self, path: Path, problem: str, hint: str | None = None) -> None:
        self.path = path
        self.problem = problem
        self.hint = hint
        super().__init__(f"{path}: {problem}" + (f" (hint: {hint})" if hint else ""))


@dataclass(frozen=True, slots=True)
class Unreadable:
    line: int
    reason: str
    detail: str
    raw: bytes


@dataclass(slots=True)
class Batch:
    """Up to ``size`` lines: the records read, and the lines that could not be read."""

    records: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    raws: list[bytes] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)
    bytes_read: int = 0

    def __len__(self) -> int:
        return len(self.records) + len(self.unreadable)


def detect_format(path: Path, explicit: str | None = None) -> FileFormat:
    """``explicit`` if given (jsonl/json/csv), else from the extension."""
    if explicit:
        chosen = _EXTENSIONS.get(f".{explicit.lower()}")
        if chosen is None:
            raise ImportFileError(path, f"unknown format {explicit!r}", "use jsonl or csv")
        return chosen
    chosen = _EXTENSIONS.get(path.suffix.lower())
    if chosen is None:
        raise ImportFileError(
            path,
            f"cannot tell the format from the extension {path.suffix!r}",
            "name the file .jsonl, .json or .csv, or pass --format jsonl|csv",
        )
    return chosen


def read_batches(
    path: Path, fmt: FileFormat, kind: RecordKind, size: int
) -> Generator[Batch, None, None]:
    """Batches of records from ``path``; raises :class:`ImportFileError` before the first
    batch when the file cannot be opened or its header is wrong."""
    try:
        handle = path.open("rb")
    except OSError as error:
        raise ImportFileError(path, f"cannot read the file ({error.strerror})") from None
    if fmt == "csv":
        return _csv_batches(path, handle, kind, size)
    head = handle.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    handle.seek(0)
    if head.startswith(b"["):
        handle.close()
        raise ImportFileError(
            path, "the file is a JSON array", "write one JSON object per line (JSON Lines)"
        )
    return _jsonl_batches(handle, size)


def read_records(
    path: Path, kind: RecordKind = "events", file_format: str | None = None
) -> Iterator[dict[str, Any]]:
    """Every readable record of ``path``, one by one (lines that cannot be read are
    skipped; :func:`omni_journey.ingest.intake.import_file` reports them)."""
    path = Path(path)
    for batch in read_batches(path, detect_format(path, file_format), kind, 1000):
        yield from batch.records


def _jsonl_batches(handle: Any, size: int) -> Generator[Batch, None, None]:
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    with handle:
        if handle.peek(3)[:3] == b"\xef\xbb\xbf":
            handle.read(3)  # a UTF-8 byte order mark
        batch = Batch()
        records, lines, raws = batch.records, batch.lines, batch.raws
        count = 0
        for number, raw in enumerate(handle, 1):
            try:
                record = loads(raw)
            except decode_error:
                if raw.isspace():
                    continue
                batch.unreadable.append(
                    Unreadable(number, "invalid-json", "the line is not valid JSON", raw)
                )
            else:
                if type(record) is dict:
                    if _float_ids(record):  # orjson reads integers past 64 bits as floats
                        record = exact_loads(raw)
                    records.append(record)
                    lines.append(number)
                    raws.append(raw)
                else:
                    detail = "the line is JSON but not an object"
                    batch.unreadable.append(Unreadable(number, "invalid-json", detail, raw))
            count += 1
            if count >= size:
                batch.bytes_read = handle.tell()
                yield batch
                batch = Batch()
                records, lines, raws = batch.records, batch.lines, batch.raws
                count = 0
        if count:
            batch.bytes_read = handle.tell()
            yield batch


def _float_ids(record: dict[str, Any]) -> bool:
    """Whether an id of the record is a float: a decimal number (refused later), or an
    integer past 64 bits that the exact reading keeps (a few lookups, not a regex)."""
    get = record.get
    if float in (type(get("id")), type(get("customer_id")), type(get("external_id"))):
        return True
    if type(get("anonymous_id")) is float:
        return True
    identities = get("identities")
    return type(identities) is dict and any(type(v) is float for v in identities.values())


class _Lines:
    """Physical lines for ``csv.reader``, remembering which ones made the current row."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self.number = 0
        self.position = 0
        self.pending: list[bytes] = []
        self.first = 0
        self.bad_encoding = False

    def __iter__(self) -> Iterator[str]:
        for raw in self._handle:
            self.number += 1
            self.position += len(raw)
            if not self.pending:
                self.first = self.number
            self.pending.append(raw)
            if self.number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                self.bad_encoding = True
                yield raw.decode("utf-8", "replace")

    def take(self) -> tuple[int, bytes, bool]:
        first, raw, bad = self.first, b"".join(self.pending), self.bad_encoding
        self.pending.clear()
        self.bad_encoding = False
        return first, raw, bad


def _csv_batches(
    path: Path, handle: Any, kind: RecordKind, size: int
) -> Generator[Batch, None, None]:
    lines = _Lines(handle)
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        handle.close()
        raise ImportFileError(path, "the CSV file has no header row") from None
    lines.take()
    columns = [name.strip() for name in header]
    try:
        _check_header(path, columns, kind)
    except ImportFileError:
        handle.close()
        raise
    return _csv_rows(handle, reader, lines, columns, kind, size)


def _csv_rows(
    handle: Any,
    reader: Any,
    lines: _Lines,
    columns: list[str],
    kind: RecordKind,
    size: int,
) -> Generator[Batch, None, None]:
    with handle:
        batch = Batch()
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error:
                first, raw, _ = lines.take()
                detail = "the row is not valid CSV"
                batch.unreadable.append(Unreadable(first, "invalid-csv", detail, raw))
                row = None
            if row is not None:
                first, raw, bad = lines.take()
                if not row:
                    continue
                if bad:
                    detail = "the row is not valid UTF-8"
                    batch.unreadable.append(Unreadable(first, "invalid-encoding", detail, raw))
                elif len(row) != len(columns):
                    detail = f"the row has {len(row)} cells, the header has {len(columns)}"
                    batch.unreadable.append(Unreadable(first, "invalid-csv", detail, raw))
                else:
                    batch.records.append(_record(columns, row, kind))
                    batch.lines.append(first)
                    batch.raws.append(raw)
            if len(batch) >= size:
                batch.bytes_read = lines.position
                yield batch
                batch = Batch()
        if len(batch):
            batch.bytes_read = lines.position
            yield batch


def _check_header(path: Path, columns: list[str], kind: RecordKind) -> None:
    plain, prefixes = (
        (_EVENT_COLUMNS, _EVENT_PREFIXES)
        if kind == "events"
        else (_PROFILE_COLUMNS, _PROFILE_PREFIXES)
    )
    unknown = [
        c
        for c in columns
        if c not in plain and not (c.partition(".")[0] in prefixes and c.partition(".")[2])
    ]
    expected = ", ".join([*plain, *(f"{p}.<key>" for p in prefixes)])
    if unknown:
        shown = ", ".join(repr(c) if _SAFE_NAME.fullmatch(c) else "(unprintable)" for c in unknown)
        raise ImportFileError(path, f"unknown columns: {shown}", f"expected {expected}")
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise ImportFileError(path, f"duplicate columns: {', '.join(duplicated)}")
    if kind == "events":
        missing = [c for c in ("id", "name", "at") if c not in columns]
        if missing:
            raise ImportFileError(path, f"missing columns: {', '.join(missing)}")


def _json_or_text(cell: str) -> Any:
    try:
        return orjson.loads(cell)
    except orjson.JSONDecodeError:
        return cell


def _record(columns: list[str], row: list[str], kind: RecordKind) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for name, cell in zip(columns, row, strict=True):
        if cell == "":
            continue
        prefix, dot, key = name.partition(".")
        if not dot:
            if name == "push_tokens":
                record[name] = _push_tokens(cell)
            else:
                record[name] = _flag(cell) if name == "merge" else cell
            continue
        if prefix in ("properties", "attributes"):
            value: Any = _json_or_text(cell)
        elif prefix == "consent":
            value = _flag(cell)
        else:
            value = cell
        record.setdefault(prefix, {})[key] = value
    return record


def _flag(cell: str) -> bool | str:
    """true/false, yes/no, 1/0 as a bool; anything else as written (then refused)."""
    lowered = cell.strip().lower()
    return True if lowered in _TRUE else False if lowered in _FALSE else cell


def _push_tokens(cell: str) -> Any:
    parsed = _json_or_text(cell)
    if isinstance(parsed, list):
        return parsed
    return [token.strip() for token in cell.split(";") if token.strip()]
