"""Advancing due enrollments: one ``JourneyRunner`` pass against a raw ``UPDATE`` floor.

    .venv/bin/python -m bench.advance --enrollments 100000

1. creates N customers (email address, email consent) with ``executemany``;
2. ingests N ``product.added`` events through ``ingest_events`` and runs one pass, which
   enrolls every customer in a journey of two delays and puts them on step ``a``;
3. copies the store, then times the second pass, two hours later: every enrollment's
   delay has come due and the pass moves it to step ``b`` (one step each);
4. on the copy, times the floor: one raw ``UPDATE enrollments SET step_id='b', ...``
   of the same rows, in one transaction, with the store's pragmas (WAL,
   synchronous=NORMAL). It skips reading the rows, the engine and the journey log.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from omni_journey.ingest.intake import ingest_events
from omni_journey.runner.passes import JourneyRunner
from omni_journey.settings import Settings
from omni_journey.spec.models import JourneySpec
from omni_journey.store import open_store

KEY = "two_delays"
SPEC = JourneySpec.model_validate(
    {
        "key": KEY,
        "trigger": {"event": "product.added"},
        "steps": [
            {"id": "a", "type": "delay", "for": "1h"},
            {"id": "b", "type": "delay", "for": "1d"},
        ],
    }
)
T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _sqlite_text(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _timed(label: str, count: int, run: Callable[[], object]) -> float:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:<28} {wall:7.2f} s  {count / wall:>10,.0f} enrollments/s  (cpu {cpu:.2f} s)")
    return wall


def load_customers(path: Path, count: int) -> list[str]:
    """Customers with an email identity and email consent, inserted directly."""
    ids = [f"c-{i:07d}" for i in range(count)]
    stamp = _sqlite_text(T0 - timedelta(days=30))
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("BEGIN")
    connection.executemany(
        "INSERT INTO customers (id, email, attributes, created_at, updated_at) "
        "VALUES (?, ?, '{}', ?, ?)",
        [(c, f"{c}@example.com", stamp, stamp) for c in ids],
    )
    connection.executemany(
        "INSERT INTO identities (kind, value, customer_id, created_at) VALUES (?, ?, ?, ?)",
        [
            (k, v, c, stamp)
            for c in ids
            for k, v in (("customer_id", c), ("email", f"{c}@example.com"))
        ],
    )
    connection.executemany(
        "INSERT INTO consents (customer_id, channel, granted, source, updated_at) "
        "VALUES (?, 'email', 1, 'bench', ?)",
        [(c, stamp) for c in ids],
    )
    connection.execute("COMMIT")
    connection.close()
    return ids


def _state_counts(path: Path) -> dict[tuple[str, str], int]:
    connection = sqlite3.connect(path)
    rows = connection.execute(
        "SELECT state, step_id, count(*) FROM enrollments GROUP BY state, step_id"
    ).fetchall()
    connection.close()
    return {(state, step): n for state, step, n in rows}


def raw_floor(path: Path, count: int, now: datetime) -> float:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")  # as the store
    wake, stamp = _sqlite_text(now + timedelta(days=1)), _sqlite_text(now)

    def update() -> None:
        connection.execute("BEGIN IMMEDIATE")
        cursor = connection.execute(
            "UPDATE enrollments SET step_id = 'b', wake_at = ?, updated_at = ? "
            "WHERE state = 'active'",
            (wake, stamp),
        )
        connection.execute("COMMIT")
        assert cursor.rowcount == count, cursor.rowcount

    wall = _timed("raw UPDATE (floor)", count, update)
    connection.close()
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enrollments", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=None, help="work here instead of a temp dir")
    args = parser.parse_args()
    count = args.enrollments

    with tempfile.TemporaryDirectory(prefix="omni-bench-", dir=args.dir) as tmp:
        work = Path(tmp)
        settings = Settings(home=work / "home")
        db, copy = work / "omni.db", work / "floor.db"
        print(f"{count:,} enrollments, SQLite {sqlite3.sqlite_version}")
        engine = open_store(f"sqlite:///{db}")
        engine.dispose()
        started = time.perf_counter()
        ids = load_customers(db, count)
        engine = open_store(f"sqlite:///{db}")
        for start in range(0, count, 5000):
            records = [
                {
                    "id": f"add-{c}",
                    "name": "product.added",
                    "customer_id": c,
                    "at": (T0 - timedelta(minutes=5)).isoformat(),
                    "properties": {"sku": "SERUM-30"},
                }
                for c in ids[start : start + 5000]
            ]
            ingest_events(engine, records, now=T0, settings=settings)
        runner = JourneyRunner(engine, {KEY: SPEC}, {})
        report = runner.run(T0)
        print(f"setup (customers, events, first pass): {time.perf_counter() - started:.1f} s")
        assert report.total("entered") == count, dict(report.journeys)
        engine.dispose()
        assert _state_counts(db) == {("active", "a"): count}, _state_counts(db)
        with sqlite3.connect(db) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copyfile(db, copy)

        later = T0 + timedelta(hours=2)
        engine = open_store(f"sqlite:///{db}")
        timed = JourneyRunner(engine, {KEY: SPEC}, {})
        ours = _timed("JourneyRunner.run", count, lambda: timed.run(later))
        engine.dispose()
        assert _state_counts(db) == {("active", "b"): count}, _state_counts(db)
        floor = raw_floor(copy, count, later)
        assert _state_counts(copy) == {("active", "b"): count}, _state_counts(copy)
        print(
            f"JourneyRunner.run reaches {floor / ours:.1%} of the raw UPDATE floor "
            f"({ours / floor:.0f}x its time)"
        )


if __name__ == "__main__":
    main()
