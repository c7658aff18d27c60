"""An import file of good and bad lines: every line stored once or rejected with a reason.

Hypothesis writes JSON Lines and CSV files for ``events import`` and ``customers
import`` that mix good lines with bad ones (broken JSON, wrong types, unknown identity
kinds, ids past 64 bits, huge and deeply nested values, times far in the past and the
future, invalid UTF-8, NULs, very long lines, CSV rows with the wrong number of cells
or odd quoting, duplicates of good lines), with or without a byte order mark, with LF or
CRLF line ends. Each file goes through :func:`omni_journey.ingest.intake.import_file`,
the function the CLI calls, on a real SQLite file, inline or through the reader child
process and its pipe, in several transactions. Afterwards: accepted + duplicates +
rejected equals the lines written; each rejected line is in the rejects file once,
with its line number and a reason, and is one of the bad lines; every good line is
stored exactly once and no rejected one at all; importing the file again stores
nothing new.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from omni_journey.ingest.intake import ImportFileError, import_file
from omni_journey.settings import Settings
from omni_journey.store import open_store
from tests.integration.test_collector import NOW
from tests.reliability.fuzz import FUZZ, fuzz_timeout

pytestmark = fuzz_timeout(2.0)

_DEEP = 1000
# a value put in place of a good field (or added as a new one)
_VALUES = st.sampled_from(
    [None, 0, -1, 2**64, 2**64 + 1, 1.5, float("1e308"), True, [], {}, [1, [2]], "", " ",
     "x" * 300, "x" * 70_000, "\u202e", "é", "a\u0000b", "0001-01-01T00:00:00+05:00",
     "9999-12-31T23:00:00-05:00", "1899-12-31T23:59:59Z", "3000-01-01T00:00:00Z",
     "2026-11-02T09:00:00", "yesterday", "2026-02-30T09:00:00Z", "not-an-email",
     "+1 (555) ABC", "maybe", "Europe/Nowhere", {"fax": "1"}, {"email": "nope"},
     {"a": "x" * 200_000}]
)  # fmt: skip
_EVENT_FIELDS = ("id", "name", "at", "customer_id", "properties", "identities")
_PROFILE_FIELDS = ("customer_id", "email", "phone", "timezone", "consent", "attributes", "at",
                   "merge", "push_tokens")  # fmt: skip


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@dataclass
class _File:
    """An import file's lines, and which of them are good."""

    kind: Literal["events", "customers"]
    fmt: str
    entries: list[bytes] = field(default_factory=list)
    good: dict[int, str] = field(default_factory=dict)  # entry -> the id it stores
    bad_ids: dict[int, str] = field(default_factory=dict)  # entry -> an id it must not store


def _good(kind: str, tag: str, i: int) -> dict[str, Any]:
    if kind == "events":
        return {"id": f"{tag}-ok-{i}", "name": "product.viewed", "customer_id": f"c-{tag}-{i % 3}",
                "at": "2026-11-02T09:00:00Z", "properties": {"n": i, "sku": "A-1"}}  # fmt: skip
    return {"customer_id": f"p-{tag}-{i}", "email": f"p{i}.{tag}@example.com",
            "consent": {"email": True}, "attributes": {"tier": "gold"},
            "at": "2026-11-01T09:00:00Z"}  # fmt: skip


def _csv_line(kind: str, record: dict[str, Any]) -> bytes:
    columns = _csv_columns(kind)
    cells = []
    for column in columns:
        prefix, _, key = column.partition(".")
        part = record.get(prefix)
        value = (part.get(key) if isinstance(part, dict) else part) if key else part
        cell = "" if value is None else value if isinstance(value, str) else json.dumps(value)
        if any(c in cell for c in ',"\r\n'):
            cell = '"' + cell.replace('"', '""') + '"'
        cells.append(cell)
    return ",".join(cells).encode("utf-8", "surrogatepass")


def _csv_columns(kind: str) -> list[str]:
    if kind == "events":
        return ["id", "name", "at", "customer_id", "properties.n", "properties.sku"]
    return ["customer_id", "email", "phone", "consent.email", "attributes.tier", "at"]


@st.composite
def _bad_line(draw: st.DrawFn, kind: str, fmt: str, tag: str, i: int) -> tuple[bytes, str | None]:
    """A bad line, and the id it would store if it were (wrongly) accepted."""
    record = _good(kind, tag, i)
    id_field = "id" if kind == "events" else "customer_id"
    record[id_field] = f"{tag}-bad-{i}"
    action = draw(st.sampled_from(["field", "field", "drop", "deep", "raw"]))
    fields = _EVENT_FIELDS if kind == "events" else _PROFILE_FIELDS
    name = draw(st.sampled_from(fields))
    if action == "field":
        record[name] = draw(_VALUES)
    elif action == "drop":
        record.pop(name, None)
    elif action == "deep":
        record["properties" if kind == "events" else "attributes"] = {"d": _nested(_DEEP)}
    kept = record[id_field] if isinstance(record.get(id_field), str) else None
    if action == "raw":
        raw = draw(st.sampled_from(
            [b"not json", b'{"id": "x", ', b"[1, 2]", b'"text"', b"\x00\x00", b"\xff\xfe{}",
             b'{"id": "\xff\xfe", "name": "x"}', b"{}{}", b"," * 40,
             b"a,b", b"a,b,c,d,e,f,g,h,i,j", b'"a""b",c', b'a"b"c,d', b"x" * 1_000_000]
        ))  # fmt: skip
        return raw, None
    if fmt == "jsonl":
        return json.dumps(record, ensure_ascii=draw(st.booleans())).encode(
            "utf-8", "surrogatepass"
        ), kept
    return _csv_line(kind, record), kept


@st.composite
def _import_file(draw: st.DrawFn, kind: Literal["events", "customers"]) -> _File:
    fmt = draw(st.sampled_from(["jsonl", "csv"]))
    tag = uuid.uuid4().hex[:12]
    made = _File(kind, fmt)
    for i in range(draw(st.integers(1, 12))):
        choice = draw(st.sampled_from(["good", "good", "bad", "bad", "copy"]))
        if choice == "copy" and made.good:  # a duplicate of a good line, as written
            made.entries.append(made.entries[draw(st.sampled_from(sorted(made.good)))])
        elif choice == "bad":
            line, kept = draw(_bad_line(kind, fmt, tag, i))
            if kept is not None:
                made.bad_ids[len(made.entries)] = kept
            made.entries.append(line)
        else:
            record = _good(kind, tag, i)
            made.good[len(made.entries)] = record["id" if kind == "events" else "customer_id"]
            line = orjson.dumps(record) if fmt == "jsonl" else _csv_line(kind, record)
            made.entries.append(line)
    return made


def _write(made: _File, path: Path, bom: bool, crlf: bool) -> dict[int, int]:
    """The file on disk; its first line number of each entry."""
    end = b"\r\n" if crlf else b"\n"
    lines = [",".join(_csv_columns(made.kind)).encode()] if made.fmt == "csv" else []
    starts: dict[int, int] = {}
    number = len(lines) + 1
    for index, entry in enumerate(made.entries):
        starts[index] = number
        number += entry.count(b"\n") + 1
        lines.append(entry)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + end.join(lines) + end)
    return starts


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty store at the schema's head, copied for each example (in milliseconds)."""
    path = tmp_path_factory.mktemp("empty") / "omni.db"
    open_store(f"sqlite:///{path}").dispose()
    return path


@contextmanager
def _store(empty: Path, home: Path) -> Iterator[Engine]:
    shutil.copy(empty, home / "omni.db")
    engine = open_store(f"sqlite:///{home / 'omni.db'}")
    try:
        yield engine
    finally:
        engine.dispose()


_TABLES = ("customers", "identities", "consents", "consent_changes", "events")


def _snapshot(engine: Engine) -> dict[str, list[Any]]:
    """Every row of the tables an import writes."""
    with engine.connect() as connection:
        return {
            table: sorted(map(tuple, connection.execute(text(f"SELECT * FROM {table}"))), key=repr)
            for table in _TABLES
        }


def _stored(engine: Engine, kind: str, ids: list[str]) -> dict[str, int]:
    query = (
        "SELECT event_id, count(*) FROM events WHERE event_id IN ({}) GROUP BY event_id"
        if kind == "events"
        else "SELECT value, count(*) FROM identities WHERE kind = 'customer_id' "
        "AND value IN ({}) GROUP BY value"
    )
    if not ids:
        return {}
    marks = ", ".join(f":p{i}" for i in range(len(ids)))
    with engine.connect() as connection:
        rows = connection.execute(
            text(query.format(marks)), {f"p{i}": v for i, v in enumerate(ids)}
        ).all()
    return {row[0]: row[1] for row in rows}


def _check_import(empty: Path, made: _File, bom: bool, crlf: bool, reader: str) -> None:
    with tempfile.TemporaryDirectory() as folder, _store(empty, Path(folder)) as engine:
        _check_file(engine, Path(folder), made, bom, crlf, reader)


def _check_file(engine: Engine, home: Path, made: _File, bom: bool, crlf: bool,
                reader: str) -> None:  # fmt: skip
    path = home / f"{made.kind}.{made.fmt}"
    starts = _write(made, path, bom, crlf)
    settings = Settings(home=home, import_reader=reader, batch_size=3, import_batch_size=4)
    if made.fmt == "jsonl" and made.entries[0].lstrip(b" \t\r").startswith(b"["):
        # a file that starts as a JSON array is refused as a whole, before anything is
        # stored, with a hint (exit 2 from the CLI): nothing else raises
        with pytest.raises(ImportFileError, match="the file is a JSON array"):
            import_file(engine, path, made.kind, settings=settings, now=NOW)
        assert not any(_snapshot(engine).values()), "a refused file stored something"
        return
    result = import_file(engine, path, made.kind, settings=settings, now=NOW)  # never raises
    assert result.accepted + result.duplicates + result.rejected == len(made.entries), result
    entry_at = {line: index for index, line in starts.items()}
    rejected: dict[int, dict[str, Any]] = {}
    if result.rejects_path is not None:
        for raw in result.rejects_path.read_bytes().splitlines():
            entry = orjson.loads(raw)
            assert entry["line"] in entry_at, entry  # the first line of a written row
            assert entry["reason"] and entry["detail"], entry
            assert entry_at[entry["line"]] not in rejected, "a line rejected twice"
            rejected[entry_at[entry["line"]]] = entry
    assert len(rejected) == result.rejected
    assert not set(rejected) & set(made.good), [rejected[i] for i in set(rejected) & set(made.good)]
    good_ids = sorted(set(made.good.values()))
    assert _stored(engine, made.kind, good_ids) == dict.fromkeys(good_ids, 1)
    refused = [made.bad_ids[i] for i in rejected if i in made.bad_ids]
    assert _stored(engine, made.kind, refused) == {}, "a rejected line was stored"
    before = _snapshot(engine)
    again = import_file(engine, path, made.kind, settings=settings, now=NOW)
    assert again.rejected == result.rejected, again
    assert _snapshot(engine) == before, "importing the file again changed the store"


_READERS = st.sampled_from(["inline"] * 7 + ["process"])  # the child costs ~0.7 s to start


@FUZZ
@given(made=_import_file("events"), bom=st.booleans(), crlf=st.booleans(), reader=_READERS)
def test_an_events_file_is_stored_or_rejected_line_by_line(
    empty_store: Path, made: _File, bom: bool, crlf: bool, reader: str
) -> None:
    _check_import(empty_store, made, bom, crlf, reader)


@FUZZ
@given(made=_import_file("customers"), bom=st.booleans(), crlf=st.booleans(), reader=_READERS)
def test_a_customers_file_is_stored_or_rejected_line_by_line(
    empty_store: Path, made: _File, bom: bool, crlf: bool, reader: str
) -> None:
    _check_import(empty_store, made, bom, crlf, reader)
