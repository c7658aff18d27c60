"""File imports whose lines are read and checked in a child process
(``OMNI_IMPORT_READER=process``), against real SQLite and PostgreSQL stores: the same
store and rejects as reading inline, the reader's errors, a reader that dies, an
import that fails while the reader runs, and the customer ids an import remembers
between chunks when another connection merges customers meanwhile."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Table, delete, select

from omni_journey.ingest import files, import_chunks
from omni_journey.ingest.intake import ImportFileError, import_file, ingest_profiles
from omni_journey.settings import Settings
from omni_journey.store.tables import metadata

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
events: Table = metadata.tables["events"]
customers: Table = metadata.tables["customers"]
identities: Table = metadata.tables["identities"]


def _settings(tmp_path: Path, reader: str, **overrides: Any) -> Settings:
    return Settings(home=tmp_path / "home", default_region="DE", import_reader=reader, **overrides)


def _mixed_lines(count: int) -> list[str]:
    """Good events of every shape the checks know, with bad lines mixed in."""
    lines: list[str] = []
    for i in range(count):
        at = "2026-05-01T10:00:00.000007Z" if i % 2 else f"2026-05-01T12:{i % 60:02d}:00+02:00"
        event: dict[str, Any] = {"id": f"e-{i:05d}", "name": "product.viewed", "at": at}
        match i % 9:
            case 0:
                event["identities"] = {"email": f"Person{i % 40}@Example.com"}
            case 1:
                event["customer_id"] = f"kunde-{i % 30}-ü"
                event["properties"] = {"sku": f"S{i}", "price": i / 7}
            case 2:
                lines.append("{not json")
                continue
            case 3:
                lines.append(json.dumps({"id": f"e-{i:05d}", "name": "x"}))  # no at
                continue
            case 4:
                lines.append(json.dumps({**event, "customer_id": "c", "at": "yesterday"}))
                continue
            case 5:
                lines.append("[1, 2]")
                continue
            case 6:
                lines.append("")
                continue
            case _:
                event["customer_id"] = f"c-{i % 50}"
        lines.append(json.dumps(event))
    return lines


def _mixed_csv(count: int) -> str:
    """The CSV form: multi-line cells, identities, bad cells and short rows."""
    rows = ["id,name,at,customer_id,properties.sku,properties.note,identities.email"]
    for i in range(count):
        at = "2026-05-01T10:00:00.000007Z" if i % 2 else "2026-05-01T12:00:00+02:00"
        match i % 5:
            case 0:
                rows.append(f"e-{i},product.viewed,{at},,S{i},,p{i % 40}@example.com")
            case 1:
                rows.append(f'e-{i},product.viewed,{at},kunde-{i % 30}-ü,S{i},"two\nlines",')
            case 2:
                rows.append(f"e-{i},product.viewed,yesterday,c-{i % 50},S{i},,")
            case 3:
                rows.append(f"e-{i},product.viewed")
            case _:
                rows.append(f"e-{i},product.viewed,{at},c-{i % 50},{i / 7},,")
    return "\n".join(rows) + "\n"


def _snapshot(store: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with store.connect() as connection:
        stored = connection.execute(
            select(
                events.c.event_id,
                events.c.name,
                events.c.customer_id,
                events.c.at,
                events.c.properties,
            ).order_by(events.c.seq)
        )
        return {
            "events": [tuple(row) for row in stored],
            "customers": sorted(
                tuple(row)
                for row in connection.execute(
                    select(customers.c.id, customers.c.email, customers.c.phone)
                )
            ),
            "identities": sorted(tuple(row) for row in connection.execute(select(identities))),
        }


def _rejects(path: Path | None) -> list[dict[str, Any]]:
    assert path is not None
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_the_reader_process_stores_exactly_what_reading_inline_stores(
    store: Engine, tmp_path: Path, fmt: str
) -> None:
    source = tmp_path / f"events.{fmt}"
    if fmt == "csv":
        source.write_text(_mixed_csv(1000))
        expected = (600, 400)
    else:
        source.write_text("\n".join(_mixed_lines(900)) + "\n")
        expected = (400, 400)
    small = {"batch_size": 7, "import_batch_size": 120}
    seen: list[int] = []
    by_process = import_file(
        store,
        source,
        "events",
        settings=_settings(tmp_path / "p", "process", **small),
        now=NOW,
        progress=seen.append,
    )
    stored_by_process = _snapshot(store)
    with store.begin() as connection:
        for table in (events, identities, customers):
            connection.execute(delete(table))
    inline = import_file(
        store, source, "events", settings=_settings(tmp_path / "i", "inline", **small), now=NOW
    )

    assert (by_process.accepted, by_process.rejected) == expected
    assert (inline.accepted, inline.rejected) == expected
    assert stored_by_process == _snapshot(store)
    assert _rejects(by_process.rejects_path) == _rejects(inline.rejects_path)
    # CSV: line 1 is the header, and every fifth row has a cell over two lines
    first_rejected = [5, 6, 11] if fmt == "csv" else [3, 4, 5]
    assert [r["line"] for r in _rejects(inline.rejects_path)][:3] == first_rejected
    assert seen == sorted(seen) and seen[-1] == source.stat().st_size
    assert len(seen) >= 4  # a chunk at a time, not the file at once


def _mixed_profiles(count: int) -> str:
    """Profiles that merge, share addresses and tokens, with bad lines mixed in."""
    lines: list[str] = []
    for i in range(count):
        profile: dict[str, Any] = {
            "customer_id": f"c-{i % 70}",
            "email": f"P{i % 90}@Example.com",
            "merge": True,  # two known customers merge only when asked
        }
        match i % 7:
            case 0:
                profile["consent"] = {"email": i % 2 == 0, "sms": True}
                profile["at"] = f"2026-04-{1 + i % 28:02d}T10:00:00Z"
            case 1:
                profile["phone"] = "not a number"
            case 2:
                lines.append("{not json")
                continue
            case 3:
                profile = {"anonymous_id": f"anon-{i % 11}", "push_tokens": [f"t-{i % 13}"]}
            case _:
                profile["attributes"] = {"n": i}
        lines.append(json.dumps(profile))
    return "\n".join(lines) + "\n"


def test_profiles_checked_in_the_reader_process_store_what_reading_inline_stores(
    store: Engine, tmp_path: Path
) -> None:
    source = tmp_path / "customers.jsonl"
    source.write_text(_mixed_profiles(700))
    seen: list[int] = []
    results, stored, rejected = [], [], []
    for reader in ("process", "inline"):
        with store.begin() as connection:
            for table in (events, identities, customers, metadata.tables["consents"]):
                connection.execute(delete(table))
        settings = _settings(tmp_path / reader, reader, batch_size=50)
        result = import_file(
            store, source, "customers", settings=settings, now=NOW, progress=seen.append
        )
        results.append((result.accepted, result.duplicates, result.rejected))
        with store.connect() as connection:
            stored.append(
                {
                    table.name: sorted(map(repr, connection.execute(select(table))))
                    for table in (customers, identities, metadata.tables["consents"])
                }
            )
        rejected.append(_rejects(result.rejects_path))

    assert results[0] == results[1] and results[0][2] == 200
    assert stored[0] == stored[1]
    assert rejected[0] == rejected[1]
    assert len(seen) == 2 * 14 and seen[13] == source.stat().st_size  # a batch at a time


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("events.csv", "id,name,at,emial\n", "unknown columns: 'emial'"),
        ("events.jsonl", '[{"id": "e-1"}]\n', "the file is a JSON array"),
        ("missing.jsonl", None, "cannot read the file"),
    ],
)
def test_the_reader_process_reports_a_file_it_cannot_read_as_inline_does(
    sqlite_store: Engine, tmp_path: Path, name: str, content: str | None, problem: str
) -> None:
    source = tmp_path / name
    if content is not None:
        source.write_text(content)
    for reader in ("process", "inline"):
        with pytest.raises(ImportFileError, match=problem):
            import_file(
                sqlite_store, source, "events", settings=_settings(tmp_path, reader), now=NOW
            )


def _write_events(path: Path, count: int) -> None:
    rows = (
        json.dumps(
            {
                "id": f"e-{i:06d}",
                "name": "product.viewed",
                "at": "2026-05-01T10:00:00.000007Z",
                "customer_id": f"c-{i % 500}",
                "properties": {"sku": f"SKU-{i % 97:05d}", "note": "x" * 40},
            }
        )
        for i in range(count)
    )
    path.write_text("\n".join(rows) + "\n")


@pytest.fixture
def reader_processes(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    """The processes imports start (``subprocess.Popen`` itself, remembered)."""
    started: list[subprocess.Popen[bytes]] = []
    popen = subprocess.Popen

    def remembered(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        process = popen(*args, **kwargs)
        started.append(process)
        return process

    monkeypatch.setattr(import_chunks.subprocess, "Popen", remembered)
    return started


def test_a_reader_process_that_dies_keeps_the_committed_chunks_and_a_rerun_completes(
    sqlite_store: Engine, tmp_path: Path, reader_processes: list[subprocess.Popen[bytes]]
) -> None:
    source = tmp_path / "events.jsonl"
    _write_events(source, 20_000)
    # chunks of 4,000 events pickle to ~500 KB, far more than a pipe holds: the
    # reader is still writing the second chunk when it is killed
    settings = _settings(tmp_path, "process", batch_size=500, import_batch_size=4_000)

    def kill_the_reader(_bytes_read: int) -> None:
        reader_processes[0].kill()
        reader_processes[0].wait()

    with pytest.raises(ImportFileError, match="reader process stopped before the end"):
        import_file(
            sqlite_store, source, "events", settings=settings, now=NOW, progress=kill_the_reader
        )
    first_chunk = 500  # an eighth of 4,000, rounded up to whole batches of 500
    assert len(_snapshot(sqlite_store)["events"]) == first_chunk

    again = import_file(sqlite_store, source, "events", settings=settings, now=NOW)
    assert (again.accepted, again.duplicates) == (20_000 - first_chunk, first_chunk)
    assert len(_snapshot(sqlite_store)["events"]) == 20_000


def test_ctrl_c_reaching_the_reader_leaves_the_import_to_its_importing_process(
    sqlite_store: Engine, tmp_path: Path, reader_processes: list[subprocess.Popen[bytes]]
) -> None:
    """A terminal's Ctrl-C goes to the whole process group; the reader ignores it (the
    importing process decides, and closing the pipe ends the reader)."""
    source = tmp_path / "events.jsonl"
    _write_events(source, 20_000)
    settings = _settings(tmp_path, "process", batch_size=500, import_batch_size=4_000)

    def interrupt_the_reader(_bytes_read: int) -> None:
        if reader_processes[0].poll() is None:
            reader_processes[0].send_signal(signal.SIGINT)

    result = import_file(
        sqlite_store, source, "events", settings=settings, now=NOW, progress=interrupt_the_reader
    )
    assert result.accepted == 20_000
    assert reader_processes[0].wait(timeout=10) == 0


def test_an_import_that_fails_stops_its_reader_process(
    sqlite_store: Engine,
    tmp_path: Path,
    reader_processes: list[subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = tmp_path / "events.jsonl"
    _write_events(source, 20_000)
    settings = _settings(tmp_path, "process", batch_size=500, import_batch_size=4_000)
    store_events = files.store_events
    calls: list[int] = []

    def fail_on_the_second(*args: Any) -> tuple[int, int]:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return store_events(*args)

    monkeypatch.setattr(files, "store_events", fail_on_the_second)
    with pytest.raises(RuntimeError, match="disk full"):
        import_file(sqlite_store, source, "events", settings=settings, now=NOW)
    (reader,) = reader_processes
    assert reader.poll() is not None  # stopped and reaped, not left writing to a pipe
    assert len(_snapshot(sqlite_store)["events"]) == 500


def test_a_merge_by_another_connection_between_chunks_reaches_the_later_chunks(
    store: Engine, tmp_path: Path
) -> None:
    """The import remembers the customer ids it resolved; a profile merged by another
    connection between two chunks must make it forget them, so the events after the
    merge go to the survivor, not to the customer merged away."""
    settings = _settings(tmp_path, "inline", batch_size=10, import_batch_size=20)
    ingest_profiles(
        store,
        [{"customer_id": "c-old", "email": "old@example.com"}, {"customer_id": "c-new"}],
        now=NOW,
        settings=settings,
    )
    source = tmp_path / "events.jsonl"
    source.write_text(
        "".join(
            json.dumps({"id": f"e-{i}", "name": "viewed", "at": "2026-05-01T10:00:00Z"} | who)
            + "\n"
            for i, who in enumerate(
                {"customer_id": "c-old" if i % 2 else f"c-{i}"} for i in range(100)
            )
        )
    )
    commits: list[int] = []

    def merge_after_the_first_chunk(_bytes_read: int) -> None:
        commits.append(1)
        if len(commits) == 1:
            merge = [{"customer_id": "c-new", "email": "old@example.com", "merge": True}]
            ingest_profiles(store, merge, now=NOW, settings=settings)

    result = import_file(
        store, source, "events", settings=settings, now=NOW, progress=merge_after_the_first_chunk
    )
    assert result.accepted == 100 and len(commits) == 5
    owners = {row[0]: row[2] for row in _snapshot(store)["events"]}
    assert {owners[f"e-{i}"] for i in range(1, 100, 2)} == {"c-new"}
    with store.connect() as connection:
        merged = connection.execute(
            select(customers.c.merged_into).where(customers.c.id == "c-old")
        ).scalar_one()
    assert merged == "c-new"


def test_auto_reads_big_files_in_a_process_and_small_ones_inline(tmp_path: Path) -> None:
    big, small = tmp_path / "big.jsonl", tmp_path / "small.jsonl"
    with big.open("wb") as handle:
        handle.truncate(import_chunks.AUTO_PROCESS_MIN_BYTES)
    small.write_text("{}\n")

    def inline(path: Path, reader: import_chunks.ImportReader) -> bool:
        job = import_chunks._Job(path, "jsonl", 10, 10, 10, "DE", True)
        return import_chunks._in_process(job, reader)

    several_cores = (os.cpu_count() or 1) >= 2
    assert inline(big, "auto") is not several_cores
    assert inline(small, "auto") and inline(tmp_path / "missing.jsonl", "auto")
    assert not inline(small, "process") and inline(big, "inline")


def test_the_reader_process_loads_no_store_code() -> None:
    """What keeps its start-up at ~0.1 s: checking events needs no SQLAlchemy."""
    code = (
        "import sys, omni_journey.ingest.import_chunks, omni_journey.ingest.profile_rows; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'sqlmodel')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == "[]"


def test_the_reader_imports_the_same_package_from_a_source_checkout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    root = Path(import_chunks.__file__).resolve().parents[2]
    assert root.name not in ("site-packages", "dist-packages")  # the suite runs from one
    assert import_chunks._child_environment()["PYTHONPATH"] == os.pathsep.join(
        [str(root), "/elsewhere"]
    )
