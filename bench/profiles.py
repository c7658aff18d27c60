"""Customer profile import into SQLite: ``import_file`` against a raw ``executemany`` floor.

    .venv/bin/python -m bench.profiles --profiles 50000

1. writes N profiles (docs/data-formats.md: customer_id, email, phone, time zone, locale,
   consent per channel, attributes; a push token on every third) to a JSON Lines file;
2. imports it into a fresh SQLite store through ``import_file`` (timed);
3. imports it again, which must change nothing (timed);
4. inserts the rows the first import stored (customers, identities, consents), read
   back and pre-built as tuples, into a fresh store of the same schema with sqlite3
   ``executemany``, in transactions of ``OMNI_BATCH_SIZE`` profiles, with the same
   pragmas as a file import: the floor, since it skips reading, checking, normalising
   addresses, looking up identities and deciding merges.

Each round (``--rounds``) runs, alternating, the import as it was (every profile walked
through the identity graph: ``profiles.split_independent`` answers "none"; lines
checked inline), the set-based import with lines checked inline, then in a reader
process, and the floor, each into a fresh store, and prints the load average: on a
shared machine wall times swing with the load, so CPU times (of the importing process;
a reader process's are not counted) are printed and compared too.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import orjson

from omni_journey.identity import profile_batch
from omni_journey.identity.statements import Profile
from omni_journey.ingest import profiles
from omni_journey.ingest.intake import import_file
from omni_journey.ingest.transactions import BULK_CHECKPOINT_PAGES, SQLITE_CACHE_KIB
from omni_journey.settings import Settings
from omni_journey.store import open_store

NOW = datetime(2026, 6, 1, tzinfo=UTC)
ZONES = ("Europe/Berlin", "Europe/Paris", "Europe/Madrid", "America/New_York")
LOCALES = ("de-DE", "fr-FR", "es-ES", "en-US")
TIERS = ("bronze", "silver", "gold")
_TABLES = ("customers", "identities", "consents")


def _profiles(count: int, seed: int) -> Iterator[dict[str, object]]:
    rng = random.Random(seed)
    for i in range(count):
        profile: dict[str, object] = {
            "customer_id": f"c-{i:07d}",
            "email": f"Person.{i}@Example.com",
            "phone": f"+49 151 {i:08d}",
            "timezone": ZONES[i % len(ZONES)],
            "locale": LOCALES[i % len(LOCALES)],
            "consent": {"email": rng.random() < 0.8, "sms": rng.random() < 0.4, "push": True},
            "attributes": {
                "first_name": f"Name{i}",
                "tier": TIERS[rng.randrange(len(TIERS))],
                "orders": rng.randrange(20),
            },
        }
        if i % 3 == 0:
            profile["push_tokens"] = [f"tok-{i:07d}-{rng.randrange(10**9):09d}"]
        yield profile


def write_profiles(path: Path, count: int, seed: int = 11) -> None:
    with path.open("wb") as out:
        out.writelines(orjson.dumps(p) + b"\n" for p in _profiles(count, seed))


def _timed(label: str, count: int, run: Callable[[], None]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"{label:<30} {wall:7.2f} s  {count / wall:>9,.0f} profiles/s  "
        f"cpu {cpu:6.2f} s  {count / cpu:>9,.0f} profiles/cpu-s"
    )
    return wall, cpu


def _stored_rows(database: Path) -> dict[str, tuple[list[str], list[tuple[object, ...]]]]:
    """Every row the import stored, per table, as the driver bound it."""
    connection = sqlite3.connect(database)
    found = {}
    for table in _TABLES:
        cursor = connection.execute(f"SELECT * FROM {table}")
        names = [d[0] for d in cursor.description]
        found[table] = (names, cursor.fetchall())
    connection.close()
    return found


def raw_floor(
    path: Path,
    rows: dict[str, tuple[list[str], list[tuple[object, ...]]]],
    count: int,
    batch_size: int,
) -> tuple[float, float]:
    engine = open_store(f"sqlite:///{path}")
    engine.dispose()
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute(f"PRAGMA cache_size=-{2 * SQLITE_CACHE_KIB}")
    connection.execute(f"PRAGMA wal_autocheckpoint={BULK_CHECKPOINT_PAGES}")
    batches = max(1, -(-count // batch_size))

    def insert() -> None:  # one transaction per batch of profiles, each table's share
        for b in range(batches):
            connection.execute("BEGIN IMMEDIATE")
            for table, (names, table_rows) in rows.items():
                share = -(-len(table_rows) // batches)
                sql = (
                    f"INSERT INTO {table} ({', '.join(names)}) "
                    f"VALUES ({', '.join('?' * len(names))})"
                )
                connection.executemany(sql, table_rows[b * share : (b + 1) * share])
            connection.execute("COMMIT")

    timed = _timed("raw executemany (floor)", count, insert)
    connection.close()
    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=None, help="default: OMNI_BATCH_SIZE")
    parser.add_argument("--dir", type=Path, default=None, help="work here instead of a temp dir")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="omni-bench-", dir=args.dir) as tmp:
        work = Path(tmp)
        overrides = {} if args.batch_size is None else {"batch_size": args.batch_size}
        settings = Settings(home=work / "home", **overrides)
        source = work / "profiles.jsonl"
        print(
            f"{args.profiles:,} profiles, batches of {settings.batch_size:,}, "
            f"SQLite {sqlite3.sqlite_version}"
        )
        write_profiles(source, args.profiles)
        split = profile_batch.split_independent
        hook = "split_independent"  # what profiles.apply_profiles calls to pick the path
        modes = {  # label: (every profile through the graph?, reader)
            "before: graph, inline": (True, "inline"),
            "set-based, inline": (False, "inline"),
            "set-based, reader process": (False, "process"),
        }
        for round_ in range(args.rounds):
            print(f"round {round_ + 1}: load average {os.getloadavg()[0]:.2f}")
            timings = {}
            for number, (mode, (walk, reader)) in enumerate(modes.items()):
                setattr(profiles, hook, _walk_all if walk else split)
                run = settings.model_copy(update={"import_reader": reader})
                database = work / f"omni-{round_}-{number}.db"
                timings[mode] = _import_twice(database, source, args.profiles, run, mode)
            setattr(profiles, hook, split)
            rows = _stored_rows(work / f"omni-{round_}-1.db")
            floor = raw_floor(work / f"floor-{round_}.db", rows, args.profiles, settings.batch_size)
            before = timings["before: graph, inline"]
            for mode, (wall, cpu) in timings.items():
                print(
                    f"{mode:<26} floor/import {floor[0] / wall:6.1%} wall, "
                    f"{floor[1] / cpu:6.1%} cpu; vs before {before[0] / wall:.2f}x wall, "
                    f"{before[1] / cpu:.2f}x cpu (importing process)"
                )


def _walk_all(
    found: Sequence[Profile], _owners: object
) -> tuple[list[tuple[Profile, str]], list[Profile]]:
    """No profile independent: every one walks the identity graph, as before."""
    return [], list(found)


def _import_twice(
    database: Path, source: Path, count: int, settings: Settings, mode: str
) -> tuple[float, float]:
    engine = open_store(f"sqlite:///{database}")

    def first() -> None:
        result = import_file(engine, source, "customers", settings=settings, now=NOW)
        assert (result.accepted, result.rejected) == (count, 0), result

    def again() -> None:
        result = import_file(engine, source, "customers", settings=settings, now=NOW)
        assert (result.accepted, result.duplicates) == (0, count), result

    timed = _timed(f"import_file ({mode})", count, first)
    _timed(f"re-import, no-op ({mode})", count, again)
    engine.dispose()
    return timed


if __name__ == "__main__":
    main()
