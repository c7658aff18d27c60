"""Event ingestion into SQLite: ``import_file`` against a raw ``executemany`` floor.

    .venv/bin/python -m bench.ingest --events 1000000

1. writes N events (docs/data-formats.md) (customer_id + properties) to a JSON Lines file;
2. imports it into a fresh SQLite store through ``import_file`` (timed);
3. imports it again, which must store nothing (timed);
4. inserts the same rows, pre-built as tuples, into a fresh store of the same schema
   with sqlite3 ``executemany``, in transactions of the same size as the import's
   (``OMNI_IMPORT_BATCH_SIZE``), with the same pragmas as a file import (WAL,
   synchronous=FULL, 128 MiB cache, a checkpoint per 25,000 WAL pages): the floor for
   the process that writes, since it skips reading, checking and resolving customers.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from omni_journey.ingest.intake import import_file
from omni_journey.ingest.transactions import BULK_CHECKPOINT_PAGES, SQLITE_CACHE_KIB
from omni_journey.settings import Settings
from omni_journey.store import open_store

NAMES = ("product.viewed", "product.viewed", "product.added", "cart.viewed", "order.completed")
CATEGORIES = ("skincare", "haircare", "makeup", "fragrance")
START = datetime(2026, 5, 1, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _events(count: int, customers: int, seed: int) -> Iterator[dict[str, object]]:
    rng = random.Random(seed)
    for i in range(count):
        yield {
            "id": f"evt-{i:09d}",
            "name": NAMES[rng.randrange(len(NAMES))],
            "customer_id": f"c-{rng.randrange(customers):07d}",
            "at": (START + timedelta(milliseconds=i * 37)).isoformat().replace("+00:00", "Z"),
            "properties": {
                "sku": f"SKU-{rng.randrange(5000):05d}",
                "category": CATEGORIES[rng.randrange(len(CATEGORIES))],
                "price": round(rng.uniform(3, 120), 2),
            },
        }


def write_events(path: Path, count: int, customers: int, seed: int = 7) -> None:
    with path.open("wb") as out:
        chunk: list[bytes] = []
        for event in _events(count, customers, seed):
            chunk.append(orjson.dumps(event))
            if len(chunk) == 10_000:
                out.write(b"\n".join(chunk) + b"\n")
                chunk.clear()
        if chunk:
            out.write(b"\n".join(chunk) + b"\n")


def _sqlite_text(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _timed(label: str, count: int, run: object) -> float:
    wall, cpu = time.perf_counter(), time.process_time()
    run()  # type: ignore[operator]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:<28} {wall:7.2f} s  {count / wall:>10,.0f} events/s  (cpu {cpu:.2f} s)")
    return wall


def raw_floor(path: Path, source: Path, batch_size: int) -> float:
    engine = open_store(f"sqlite:///{path}")
    engine.dispose()
    received = _sqlite_text(NOW)
    rows = []
    with source.open("rb") as lines:
        for line in lines:
            e = orjson.loads(line)
            at = datetime.fromisoformat(e["at"])
            props = orjson.dumps(e["properties"]).decode()
            rows.append((e["id"], e["name"], e["customer_id"], _sqlite_text(at), received, props))
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    # as a file import: durable at commit, its page cache, its WAL checkpoints
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute(f"PRAGMA cache_size=-{2 * SQLITE_CACHE_KIB}")
    connection.execute(f"PRAGMA wal_autocheckpoint={BULK_CHECKPOINT_PAGES}")
    sql = (
        "INSERT INTO events (event_id, name, customer_id, at, received_at, properties) "
        "VALUES (?, ?, ?, ?, ?, ?)"
    )

    def insert() -> None:  # one transaction per import transaction (same size)
        for start in range(0, len(rows), batch_size):
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany(sql, rows[start : start + batch_size])
            connection.execute("COMMIT")

    wall = _timed("raw executemany (floor)", len(rows), insert)
    connection.close()
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=None, help="default: OMNI_BATCH_SIZE")
    parser.add_argument(
        "--import-batch-size",
        type=int,
        default=None,
        help="events per transaction, import and floor alike; default: OMNI_IMPORT_BATCH_SIZE",
    )
    parser.add_argument(
        "--reader",
        choices=("auto", "process", "inline"),
        default=None,
        help="where lines are read and checked; default: OMNI_IMPORT_READER (auto)",
    )
    parser.add_argument("--dir", type=Path, default=None, help="work here instead of a temp dir")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="omni-bench-", dir=args.dir) as tmp:
        work = Path(tmp)
        overrides: dict[str, Any] = {}
        if args.batch_size is not None:
            overrides["batch_size"] = args.batch_size
        if args.import_batch_size is not None:
            overrides["import_batch_size"] = args.import_batch_size
        if args.reader is not None:
            overrides["import_reader"] = args.reader
        settings = Settings(home=work / "home", **overrides)
        source = work / "events.jsonl"
        print(f"{args.events:,} events over {args.customers:,} customers, ", end="")
        print(
            f"read in batches of {settings.batch_size:,}, "
            f"{settings.import_batch_size:,} per transaction, reader {settings.import_reader}, "
            f"SQLite {sqlite3.sqlite_version}"
        )
        write_events(source, args.events, args.customers)
        engine = open_store(f"sqlite:///{work / 'omni.db'}")

        def first() -> None:
            result = import_file(engine, source, "events", settings=settings, now=NOW)
            assert (result.accepted, result.rejected) == (args.events, 0), result

        def again() -> None:
            result = import_file(engine, source, "events", settings=settings, now=NOW)
            assert (result.accepted, result.duplicates) == (0, args.events), result

        imported = _timed("import_file", args.events, first)
        _timed("re-import (no-op)", args.events, again)
        engine.dispose()
        floor = raw_floor(work / "floor.db", source, settings.import_batch_size)
        print(f"import_file reaches {floor / imported:.0%} of the raw executemany floor")


if __name__ == "__main__":
    main()
