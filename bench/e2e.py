"""End to end through the command line: import, passes and dispatch against floors.

    .venv/bin/python -m bench.e2e --events 100000 [--database postgres] [--scaling] [--json F]

Drives ``.venv/bin/omni-journey`` as subprocesses (``OMNI_HOME`` a temp folder,
``OMNI_PROJECT_DIR`` the repository, ``OMNI_DATABASE_URL`` for PostgreSQL), so it keeps
working while modules move; ``--checkout DIR`` runs the package and project of another
source tree through the same CLI (``PYTHONPATH``; e.g. ``git archive HEAD | tar -x -C
DIR``). Each command is timed for wall, CPU (user + system of the child and the
children it waited for, from ``os.wait4``) and peak RSS (the largest single process),
per stage:

1. data (not product time): N/10 customer profiles and N events over 3 days
   (``bench.e2e_data``), in one file per ``--pass-every`` hours;
2. ``customers import``;
3. ``events import`` of each chunk file, each followed by 4. a ``run --now <end of the
   chunk> --no-dispatch`` pass over every journey, then passes every ``--pass-every``
   hours for ``--beyond`` hours more;
5. ``dispatch`` (no ``--now``: the real clock, later than the whole simulated window,
   so everything queued is due) to the file outbox.

The floors (``bench.e2e_floors``, stdlib + Jinja2, each its own interpreter, measured
the same way): raw ``executemany`` of the same profiles and events, a set-based
``INSERT .. SELECT`` enrollment, raw Jinja2 renders of as many messages as were sent,
and writing as many files of the same sizes. Prints the stages, product CPU / floor CPU
and CPU per message sent; ``--scaling`` runs 10k, 100k and 1M events, one row each.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.e2e_data import START, write_customers, write_events

REPO = Path(__file__).resolve().parent.parent
CLI = REPO / ".venv" / "bin" / "omni-journey"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PRODUCT = ("customers import", "events import", "run passes", "dispatch")
FLOORS = ("floor: executemany", "floor: INSERT..SELECT", "floor: jinja2 renders", "floor: files")
GENERATED = (
    "('product.viewed','product.added','checkout.started','order.completed','account.created')"
)


class CommandFailed(RuntimeError):
    pass


@dataclass
class Stage:
    name: str
    wall: float = 0.0
    cpu: float = 0.0
    rss_mib: float = 0.0
    items: int = 0
    calls: int = 0
    server_cpu: float = 0.0

    def add(self, wall: float, cpu: float, rss_mib: float, server: float) -> None:
        self.wall, self.cpu, self.calls = self.wall + wall, self.cpu + cpu, self.calls + 1
        self.rss_mib, self.server_cpu = max(self.rss_mib, rss_mib), self.server_cpu + server


@dataclass
class Result:
    events: int
    customers: int
    database: str
    stages: dict[str, Stage] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)

    def stage(self, name: str) -> Stage:
        return self.stages.setdefault(name, Stage(name))

    def cpu(self, names: tuple[str, ...]) -> float:
        return sum(self.stages[n].cpu for n in names)

    def server(self, names: tuple[str, ...]) -> float:
        return sum(self.stages[n].server_cpu for n in names)


def server_cpu(postmaster: int | None) -> float:
    """CPU seconds of a PostgreSQL server so far: the postmaster, the backends it has
    reaped (cutime, cstime) and its live children (checkpointer, writers, ...)."""
    if postmaster is None:
        return 0.0
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(stat.parent.name) == postmaster:
                total += sum(int(f) for f in fields[11:15])
            elif int(fields[1]) == postmaster:
                total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def child(argv: list[str], env: dict[str, str], log: Path) -> tuple[float, float, float, str]:
    """Run one command; wall, CPU and peak RSS (MiB) from ``os.wait4``, and its output."""
    started = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    output = log.read_text(errors="replace")
    if process.returncode != 0:
        raise CommandFailed(f"{' '.join(argv[1:])} exited {process.returncode}:\n{output[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, output


class Driver:
    """Runs product commands and floors, adding each to its stage."""

    def __init__(self, result: Result, work: Path, env: dict[str, str], pg: int | None) -> None:
        self.result, self.work, self.env, self.pg, self.n = result, work, env, pg, 0

    def run(self, stage: str, argv: list[str]) -> str:
        self.n += 1
        log = self.work / "logs" / f"{self.n:03d}-{argv[0].rsplit('/', 1)[-1]}.log"
        before = server_cpu(self.pg)
        wall, cpu, rss, output = child(argv, self.env, log)
        time.sleep(0.05 if self.pg else 0)  # let the postmaster reap the backend
        self.result.stage(stage).add(wall, cpu, rss, server_cpu(self.pg) - before)
        return output

    def product(self, stage: str, *args: str) -> str:
        return self.run(stage, [str(CLI), *args])

    def floor(self, stage: str, name: str, **config: Any) -> int:
        argv = [sys.executable, "-m", "bench.e2e_floors", name, json.dumps(config)]
        items = int(json.loads(self.run(stage, argv).strip().splitlines()[-1])["items"])
        self.result.stage(stage).items += items
        return items


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Read the product's store (table names only, which the refactor keeps)."""
    if url.startswith("postgresql"):
        import psycopg  # only for PostgreSQL

        with psycopg.connect(url.replace("+psycopg", "")) as connection:
            return list(connection.execute(sql).fetchall())
    with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as connection:
        return connection.execute(sql).fetchall()


def run_once(
    args: argparse.Namespace, events: int, customers: int, url: str | None, pg: int | None
) -> Result:
    result = Result(events, customers, "postgres" if url else "sqlite")
    with tempfile.TemporaryDirectory(prefix="omni-e2e-", dir=args.dir) as tmp:
        work = Path(tmp)
        (work / "logs").mkdir()
        home = work / "home"
        store = url or f"sqlite:///{home / 'omni.db'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNI_", "PREFECT_"))}
        env.update(OMNI_HOME=str(home), OMNI_PROJECT_DIR=str(args.checkout), COLUMNS="200")
        if args.checkout != REPO:
            env["PYTHONPATH"] = str(args.checkout)
        if url:  # a database server needs the signing secret set (the CLI fails closed)
            env.update(OMNI_DATABASE_URL=url, OMNI_SECRET_KEY=secrets.token_urlsafe(32))
        started = time.perf_counter()
        write_customers(work / "customers.jsonl", customers, args.seed)
        chunks = write_events(work, events, customers, args.seed, args.pass_every)
        result.counts["generate_s"] = round(time.perf_counter() - started, 2)
        d = Driver(result, work, env, pg)
        for _ in range(3):  # what starting the CLI costs, to read the figures with
            d.product("cli start (--help)", "--help")
        d.product("customers import", "customers", "import", str(work / "customers.jsonl"))
        for path, end in chunks:
            d.product("events import", "events", "import", str(path))
            d.product("run passes", "run", "--now", _iso(end), "--no-dispatch")
        last, beyond = chunks[-1][1], timedelta(hours=args.beyond)
        at = last + timedelta(hours=args.pass_every)
        while at <= last + beyond:
            d.product("run passes", "run", "--now", _iso(at), "--no-dispatch")
            at += timedelta(hours=args.pass_every)
        report = json.loads(d.product("dispatch", "dispatch", "--json").strip().splitlines()[-1])
        count(result, store, home, report)
        floors(d, result, work, url, args.checkout / "templates")
    return result


def count(result: Result, store: str, home: Path, report: dict[str, Any]) -> None:
    c = result.counts
    c["dispatch_report"] = report
    c["customers_stored"] = query(store, "SELECT count(*) FROM customers")[0][0]
    c["events_stored"] = query(store, f"SELECT count(*) FROM events WHERE name IN {GENERATED}")[0][
        0
    ]
    c["enrollments"] = query(store, "SELECT count(*) FROM enrollments")[0][0]
    rows = query(store, "SELECT status, count(*) FROM messages GROUP BY status")
    c["messages_by_status"] = {status: n for status, n in rows}
    rows = query(
        store,
        "SELECT message_key, channel, count(*) FROM messages WHERE status = 'sent' "
        "GROUP BY message_key, channel ORDER BY 1, 2",
    )
    c["sent"] = [[key, channel, n] for key, channel, n in rows]
    files = [p for p in (home / "outbox").rglob("*") if p.is_file()]
    c["outbox_files"] = len(files)
    c["outbox_sizes"] = sorted(p.stat().st_size for p in files)
    c["outbox_bytes"] = sum(c["outbox_sizes"])
    by_channel: dict[str, int] = {}
    for p in files:
        by_channel[p.parent.name] = by_channel.get(p.parent.name, 0) + 1
    c["outbox_by_channel"] = by_channel
    r = result.stages
    r["customers import"].items = c["customers_stored"]
    r["events import"].items = c["events_stored"]
    r["run passes"].items = c["enrollments"]
    r["dispatch"].items = c["outbox_files"]


def floors(d: Driver, result: Result, work: Path, url: str | None, templates: Path) -> None:
    db = url or f"sqlite:///{work / 'floor.db'}"
    chunks = sorted(str(p) for p in work.glob("events-*.jsonl"))
    d.floor("floor: setup", "create", url=db)
    d.floor(
        "floor: executemany",
        "ingest",
        url=db,
        customers=str(work / "customers.jsonl"),
        chunks=chunks,
    )
    d.floor("floor: INSERT..SELECT", "enroll", url=db)
    rendered = [s for s in result.counts["sent"] if s[1] != "webhook"]
    d.floor("floor: jinja2 renders", "render", templates=str(templates), counts=rendered)
    sizes = work / "sizes.json"
    sizes.write_text(json.dumps(result.counts.pop("outbox_sizes")))
    d.floor("floor: files", "files", folder=str(work / "floor-files"), sizes=str(sizes))


def print_result(r: Result) -> None:
    c = r.counts
    print(f"\n{r.events:,} events, {r.customers:,} customers, {r.database}")
    print(f"{'stage':<24} {'calls':>5} {'wall s':>8} {'CPU s':>8} {'peak RSS':>9}", end="")
    pg = r.server(PRODUCT) > 0
    print(f" {'items':>9} {'items/s':>9}" + (f" {'server CPU s':>12}" if pg else ""))
    for s in r.stages.values():
        rate = f"{s.items / s.wall:,.0f}" if s.items and s.wall else ""
        print(
            f"{s.name:<24} {s.calls:>5} {s.wall:>8.2f} {s.cpu:>8.2f} {s.rss_mib:>6.0f} MiB"
            f" {s.items:>9,} {rate:>9}" + (f" {s.server_cpu:>12.2f}" if pg else "")
        )
    product, floor = r.cpu(PRODUCT), r.cpu(FLOORS)
    calls = sum(r.stages[n].calls for n in PRODUCT)
    help_ = r.stages["cli start (--help)"]
    start = help_.cpu / help_.calls * calls
    sent = c["messages_by_status"].get("sent", 0)
    print(f"product CPU {product:.2f} s in {calls} commands", end="")
    print(f" (of which ~{start:.1f} s starting the CLI: {calls} x the mean --help CPU)")
    print(f"floor CPU {floor:.2f} s; product / floor {product / floor:.1f}x", end="")
    print(f" ({(product - start) / floor:.1f}x without CLI starts)")
    if pg:
        ours, least = product + r.server(PRODUCT), floor + r.server(FLOORS)
        print(f"with the server's CPU: {ours:.2f} s / {least:.2f} s = {ours / least:.1f}x")
    print(f"CPU per message sent: {1000 * product / max(sent, 1):.1f} ms ({sent:,} sent)")
    size = c["outbox_bytes"] / 2**20
    print(f"outbox files {c['outbox_files']:,} ({size:.1f} MiB): {c['outbox_by_channel']}")
    print(f"messages by status {c['messages_by_status']}; enrollments {c['enrollments']:,}")
    print(f"stored: customers {c['customers_stored']:,}, events {c['events_stored']:,}")
    print(f"data generated in {c['generate_s']} s (not counted)")


def print_scaling(results: list[Result]) -> None:
    print(
        f"\n{'events':>10} {'msgs sent':>9} {'wall s':>8} {'product CPU':>11} {'floor CPU':>9}",
        end="",
    )
    print(f" {'ratio':>6} {'ms CPU/msg':>10} {'peak RSS':>9}")
    for r in results:
        product, floor = r.cpu(PRODUCT), r.cpu(FLOORS)
        sent = r.counts["messages_by_status"].get("sent", 0)
        wall = sum(r.stages[n].wall for n in PRODUCT)
        rss = max(r.stages[n].rss_mib for n in PRODUCT)
        print(f"{r.events:>10,} {sent:>9,} {wall:>8.1f} {product:>11.1f} {floor:>9.2f}", end="")
        print(f" {product / floor:>5.1f}x {1000 * product / max(sent, 1):>10.1f} {rss:>5.0f} MiB")


def _as_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    for user in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(user)
            return ["runuser", "-u", user, "--", *argv]
    raise RuntimeError("running as root and no unprivileged user (postgres, nobody) exists")


@contextlib.contextmanager
def postgres_server() -> Iterator[tuple[str, int]]:
    """A throw-away PostgreSQL 15 on 127.0.0.1 (as tests/support/postgres.py starts one)."""
    root = Path(tempfile.mkdtemp(prefix="omni-e2e-pg-"))
    data = root / "data"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    if os.geteuid() == 0:
        user = _as_user([])[2]
        os.chown(root, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
    root.chmod(0o700)
    initdb = [str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "omni", "--no-sync"]
    subprocess.run(_as_user(initdb), check=True, capture_output=True)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=50"
    ctl = [str(PG_BIN / "pg_ctl"), "-D", str(data)]
    start = [*ctl, "-o", options, "-l", str(root / "log"), "-w", "start"]
    subprocess.run(_as_user(start), check=True, capture_output=True)
    try:
        postmaster = int((data / "postmaster.pid").read_text().split()[0])
        yield f"postgresql+psycopg://omni@127.0.0.1:{port}/postgres", postmaster
    finally:
        subprocess.run(_as_user([*ctl, "-m", "fast", "stop"]), check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=None, help="default: events / 10")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--database-url", default=None, help="postgres: an empty database")
    parser.add_argument("--scaling", action="store_true", help="10k, 100k and 1M events")
    parser.add_argument("--pass-every", type=int, default=6, help="hours between passes")
    parser.add_argument("--beyond", type=int, default=24, help="hours of passes after the data")
    parser.add_argument("--checkout", type=Path, default=REPO, help="run this source tree")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--dir", type=Path, default=None, help="work here instead of a temp dir")
    args = parser.parse_args()
    if not CLI.exists():
        sys.exit(f"{CLI} not found: install the project first (pip install -e .)")
    sizes = [10_000, 100_000, 1_000_000] if args.scaling else [args.events]
    load = os.getloadavg()
    print(
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, SQLite {sqlite3.sqlite_version}"
    )
    print(f"package and project from {args.checkout}")
    print(f"simulated window {_iso(START)} + 3 days, passes every {args.pass_every} h")
    results = []
    for n in sizes:
        customers = args.customers or n // 10
        try:
            if args.database == "postgres" and not args.database_url:
                with postgres_server() as (url, postmaster):
                    results.append(run_once(args, n, customers, url, postmaster))
            else:
                results.append(run_once(args, n, customers, args.database_url, None))
        except CommandFailed as error:
            sys.exit(f"command failed: {error}")
        print_result(results[-1])
    if args.scaling:
        print_scaling(results)
    load = os.getloadavg()
    print(f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))


if __name__ == "__main__":
    main()
