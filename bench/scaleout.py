"""Scale-out: 1, 2 and 4 worker processes on one PostgreSQL, one shard each.

    .venv/bin/python -m bench.scaleout --enrollments 20000 --messages 2000

Starts a throw-away PostgreSQL (as tests/support/postgres.py does; or ``--database-url``
names a server's maintenance database), then:

1. **a pass with many due enrollments**: N customers (email, consent), one
   ``product.added`` each, one pass that enrolls all of them in a journey of two delays
   (``a``: 1h, ``b``: 1d). That database is the template; for each worker count W a
   copy of it gets the second pass, two hours later (every enrollment due, moved to
   ``b``), as W processes running ``JourneyRunner(..., shard=Shard(i, W)).run``;
2. **dispatch to the file outbox**: M customers, each entered in a journey that sends
   the repository's ``welcome`` email at once (M pending outbox rows); for each W a
   copy is dispatched by W processes, ``dispatch_due(..., shard=Shard(i, W))``, to a
   file outbox of its own.

Each worker imports and connects first, then all start together; throughput is the
work done over the time from the first start to the last end. CPU is the sum of the
workers' CPU time (the database server's is not counted). Every run's result (the
enrollments and the journey log; the outbox rows and the files written) must be the
one worker's: the script says "identical" or stops.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from omni_journey.spec.models import JourneySpec

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
DELAYS = {
    "key": "two_delays",
    "trigger": {"event": "product.added"},
    "steps": [
        {"id": "a", "type": "delay", "for": "1h"},
        {"id": "b", "type": "delay", "for": "1d"},
    ],
}
WELCOME = {
    "key": "welcome_now",
    "trigger": {"event": "signed_up"},
    "steps": [{"id": "hello", "type": "send", "message": "welcome", "channel": "email"}],
}


# --- the database -----------------------------------------------------------------------


@contextlib.contextmanager
def _server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    sys.path.insert(0, str(ROOT))
    from tests.support.postgres import postgres_server

    with postgres_server() as started:
        yield started


def _database(server: str, template: str | None = None) -> str:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        like = f' TEMPLATE "{template}"' if template else ""
        connection.execute(text(f'CREATE DATABASE "{name}"{like}'))
    admin.dispose()
    return server.rsplit("/", 1)[0] + f"/{name}"


def _prepare(server: str, spec: dict[str, Any], count: int, event: str, home: Path) -> str:
    """A database with ``count`` customers entered in ``spec`` by one pass; its name."""
    from omni_journey.ingest.intake import ingest_events, ingest_profiles
    from omni_journey.runner.passes import JourneyRunner
    from omni_journey.settings import Settings
    from omni_journey.store import open_store

    url = _database(server)
    engine = open_store(url)
    settings = Settings(home=home)
    ids = [f"c-{i:07d}" for i in range(count)]
    for start in range(0, count, 5000):
        chunk = ids[start : start + 5000]
        profiles = [
            {"customer_id": c, "email": f"{c}@example.com", "timezone": "UTC",
             "consent": {"email": True}, "attributes": {"first_name": c}}
            for c in chunk
        ]  # fmt: skip
        ingest_profiles(engine, profiles, now=T0 - timedelta(days=1), settings=settings)
        events = [
            {"id": f"{event}-{c}", "name": event, "customer_id": c,
             "at": (T0 - timedelta(minutes=5)).isoformat(), "properties": {}}
            for c in chunk
        ]  # fmt: skip
        ingest_events(engine, events, now=T0, settings=settings)
    journey = JourneySpec.model_validate(spec)
    JourneyRunner(engine, {journey.key: journey}, {}).run(T0)
    engine.dispose()
    return url.rsplit("/", 1)[1]


# --- the workers ------------------------------------------------------------------------


def worker(kind: str, url: str, shard: str, now: str) -> None:
    """One worker process: get ready, wait for "go" on stdin, work, print what it did."""
    from omni_journey.runner.passes import JourneyRunner
    from omni_journey.service.pipeline import dispatch_due
    from omni_journey.settings import get_settings
    from omni_journey.store import open_store
    from omni_journey.store.shards import Shard

    engine = open_store(url)
    part = Shard.parse(shard)
    at = datetime.fromisoformat(now)
    journey = JourneySpec.model_validate(DELAYS)
    runner = JourneyRunner(engine, {journey.key: journey}, {}, shard=part)
    settings = get_settings()
    with engine.connect() as connection:  # the pool holds a connection already
        connection.execute(text("SELECT 1"))
    print("ready", flush=True)
    sys.stdin.readline()
    started, cpu = time.time(), time.process_time()
    if kind == "pass":
        done = sum(c["advanced"] for c in runner.run(at).journeys.values())
    else:
        done = dispatch_due(engine, settings, now=at, shard=part).sent
    ended = time.time()
    print(json.dumps({"start": started, "end": ended, "cpu": time.process_time() - cpu,
                      "done": done}), flush=True)  # fmt: skip
    sys.stdin.readline()  # its connections stay open until the server's CPU is read
    engine.dispose()


def _server_cpu() -> float:
    """CPU seconds (user + system) of every ``postgres`` process alive now."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)
            if fields[0].endswith("(postgres"):
                parts = fields[1].split()
                total += (int(parts[11]) + int(parts[12])) / tick
    return total


def _run(kind: str, url: str, workers: int, now: datetime, home: Path) -> dict[str, float]:
    env = dict(os.environ)
    env.update(
        OMNI_DATABASE_URL=url,
        OMNI_HOME=str(home),
        OMNI_PROJECT_DIR=str(ROOT),
        OMNI_RATE_LIMITS="",
        OMNI_SECRET_KEY="bench-scaleout-" + "secret",  # links in the emails are signed
    )
    command = [sys.executable, "-m", "bench.scaleout", "--worker", kind, "--url", url]
    processes = [
        subprocess.Popen(
            [*command, "--shard", f"{i}/{workers}", "--now", now.isoformat()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        for i in range(1, workers + 1)
    ]
    for process in processes:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    server = _server_cpu()
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    results = []
    for process in processes:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("{"), line
        results.append(json.loads(line))
    server = _server_cpu() - server  # the workers' backends are still alive
    for process in processes:
        process.communicate("bye\n", timeout=600)
        assert process.returncode == 0
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    done = sum(r["done"] for r in results)
    first = min(r["start"] for r in results)
    if os.environ.get("BENCH_VERBOSE"):  # when each worker ran, from the first start
        spans = [f"{r['start'] - first:.2f}-{r['end'] - first:.2f}" for r in results]
        print(f"  {kind} x{workers}: {', '.join(spans)} s", flush=True)
    return {"wall": wall, "cpu": sum(r["cpu"] for r in results), "done": done, "server": server}


def _digest(url: str, queries: list[str]) -> str:
    engine = create_engine(url)
    digest = hashlib.sha256()
    with engine.connect() as connection:
        for query in queries:
            for row in sorted(tuple(map(str, r)) for r in connection.execute(text(query))):
                digest.update(repr(row).encode())
    engine.dispose()
    return digest.hexdigest()[:16]


PASS_RESULT = [
    "SELECT customer_id, journey_key, step_id, state, wake_at FROM enrollments",
    "SELECT customer_id, journey_key, step_id, kind, reason, at FROM journey_log",
]
DISPATCH_RESULT = [
    "SELECT customer_id, channel, message_key, status, attempts FROM messages",
    "SELECT name, customer_id FROM events WHERE name LIKE 'message.%'",
]


def _table(title: str, unit: str, rows: list[tuple[int, dict[str, float], str]]) -> None:
    """One line per worker count: the median run by wall time (all walls listed)."""
    print(f"\n{title}")
    print(f"| workers | wall (median; all) | {unit}/s | vs 1 worker | CPU workers | "
          "CPU server | result |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---|")
    by_count: dict[int, list[tuple[dict[str, float], str]]] = {}
    for workers, run, digest in rows:
        by_count.setdefault(workers, []).append((run, digest))
    base = None
    for workers, runs in by_count.items():
        ordered = sorted(runs, key=lambda r: r[0]["wall"])
        run, digest = ordered[len(ordered) // 2]
        rate = run["done"] / run["wall"]
        base = base or rate
        walls = ", ".join(f"{r['wall']:.2f}" for r, _ in runs)
        print(f"| {workers} | {run['wall']:.2f} s ({walls}) | {rate:,.0f} | "
              f"{rate / base:.2f}x | {run['cpu']:.2f} s | {run['server']:.2f} s | "
              f"{digest} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enrollments", type=int, default=20_000)
    parser.add_argument("--messages", type=int, default=2_000)
    parser.add_argument("--workers", default="1,2,4", help="worker counts to compare")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, alternating")
    parser.add_argument("--database-url", default=None, help="a server's maintenance db")
    parser.add_argument("--worker", choices=["pass", "dispatch"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--shard", help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.url, args.shard, args.now)
        return
    counts = [int(n) for n in args.workers.split(",")]
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1 and 5 min), "
          f"{os.cpu_count()} cores")  # fmt: skip
    with _server(args.database_url) as server, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        due = _prepare(server, DELAYS, args.enrollments, "product.added", work / "a")
        outbox = _prepare(server, WELCOME, args.messages, "signed_up", work / "b")
        print(f"setup {time.perf_counter() - started:.1f} s")
        passes, sends = [], []
        for workers in counts * args.repeat:
            url = _database(server, due)
            run = _run("pass", url, workers, T0 + timedelta(hours=2), work / "p")
            assert run["done"] == args.enrollments, run
            passes.append((workers, run, _digest(url, PASS_RESULT)))
        for number, workers in enumerate(counts * args.repeat):
            url = _database(server, outbox)
            home = work / f"d{number}"
            run = _run("dispatch", url, workers, T0 + timedelta(minutes=1), home)
            files = sum(1 for p in (home / "outbox").rglob("*") if p.is_file())
            assert run["done"] == files == args.messages, (run, files)
            sends.append((workers, run, _digest(url, DISPATCH_RESULT)))
        for rows in (passes, sends):
            assert len({digest for _, _, digest in rows}) == 1, "results differ"
        _table(f"pass over {args.enrollments:,} due enrollments", "enrollments", passes)
        _table(f"dispatch of {args.messages:,} emails to the file outbox", "messages", sends)
        print("\nresults identical for every worker count (digest of the rows)")
        print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
