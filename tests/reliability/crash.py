"""Running the product's commands as an operator would, and killing them.

A :class:`Workload` is the list of commands that take a shop from nothing to every
message sent: import the customers, then per chunk of events an import and a pass, then
passes beyond the last event, then ``dispatch`` until nothing is due. :func:`run_clean`
runs it once and times every step; :func:`run_killed` runs it again on an empty store,
killing each step (its whole process group, with SIGKILL) at random points within that
step's clean duration, and restarting it until it completes; :func:`run_racing` starts
every step twice at once. :func:`snapshot` reads
what the store and the outbox hold afterwards, without database ids (which differ when
work is redone), so a killed run can be compared with the clean one.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from bench.e2e_data import write_customers, write_events
from omni_journey.store import open_store

ROOT = Path(__file__).resolve().parents[2]
COMMAND = str(Path(sys.executable).parent / "omni-journey")
# a kill inside the first instants only ever hits the interpreter starting: spread them
# over the part of a step that does the work
KILL_FROM, KILL_UNTIL = 0.15, 1.05


@dataclass(frozen=True)
class Step:
    name: str
    args: tuple[str, ...]


@dataclass
class Workload:
    """The commands, the environment they run in and where their data lives."""

    steps: list[Step]
    env: dict[str, str]
    home: Path
    database_url: str

    @classmethod
    def shop(
        cls,
        work: Path,
        database_url: str | None,
        *,
        customers: int = 100,
        events: int = 1200,
        seed: int = 7,
    ) -> Workload:
        """The end-to-end benchmark's shop, small: profiles, 3 days of sessions in
        daily chunks, each imported and followed by a pass, two passes beyond."""
        work.mkdir(parents=True, exist_ok=True)
        home = work / "home"
        url = database_url or f"sqlite:///{home / 'omni.db'}"
        write_customers(work / "customers.jsonl", customers, seed)
        chunks = write_events(work, events, customers, seed, 24)
        steps = [Step("customers import", ("customers", "import", str(work / "customers.jsonl")))]
        for path, end in chunks:
            steps.append(Step("events import", ("events", "import", str(path))))
            steps.append(Step("run", ("run", "--now", _iso(end), "--no-dispatch")))
        last = chunks[-1][1]
        for hours in (12, 24):
            steps.append(Step("run", ("run", "--now", _iso(last + timedelta(hours=hours)),
                                      "--no-dispatch")))  # fmt: skip
        steps.append(Step("dispatch", ("dispatch", "--json")))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNI_", "PREFECT_"))}
        env.update(
            OMNI_HOME=str(home),
            OMNI_PROJECT_DIR=str(ROOT),
            OMNI_DATABASE_URL=url,
            OMNI_SECRET_KEY="reliability-harness-secret",
            # a killed dispatcher's claims lapse quickly, so a restart takes them over
            OMNI_DISPATCH_CLAIM_SECONDS="10",
            # the file outbox is idempotent: a message in doubt is sent again, never lost
            OMNI_DISPATCH_IN_DOUBT="resend",
            OMNI_IMPORT_BATCH_SIZE="400",
            OMNI_BATCH_SIZE="200",
            COLUMNS="200",
        )
        return cls(steps, env, home, url)


@dataclass
class Outcome:
    seconds: dict[str, float] = field(default_factory=dict)
    kills: Counter[str] = field(default_factory=Counter)
    attempts: int = 0
    finished_first: int = 0  # attempts that completed before their kill came


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _start(workload: Workload, step: Step) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [COMMAND, *step.args],
        env=workload.env,
        cwd=workload.home.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the import's reader dies with it
    )


def _finish(process: subprocess.Popen[str], step: Step) -> str:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, f"{step.name} failed ({process.returncode}):\n{out}\n{err}"
    return out


def _nothing_due(workload: Workload, output: str) -> bool:
    """Whether ``dispatch --json`` found nothing left to send (every message final)."""
    report = json.loads(output.strip().splitlines()[-1])
    if report.get("claimed", 0):
        return False
    engine = open_store(workload.database_url)
    try:
        with engine.connect() as connection:
            open_rows = connection.execute(
                text(
                    "SELECT count(*) FROM messages WHERE status NOT IN ('sent', 'failed', "
                    "'suppressed', 'skipped')"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    return int(open_rows) == 0


def _wait_for_claims(workload: Workload) -> None:
    """Sleep until every claim on the outbox has lapsed."""
    engine = open_store(workload.database_url)
    try:
        with engine.connect() as connection:
            until = connection.execute(
                text("SELECT max(claimed_until) FROM messages WHERE status = 'claimed'")
            ).scalar_one()
    finally:
        engine.dispose()
    if until is not None:
        if isinstance(until, str):  # SQLite: naive UTC text
            until = datetime.fromisoformat(until)
        until = until if until.tzinfo else until.replace(tzinfo=UTC)
        time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.5)


def _complete(workload: Workload, step: Step) -> None:
    """Run ``step`` to completion; ``dispatch`` again until nothing is due (a killed
    dispatcher's claims lapse after OMNI_DISPATCH_CLAIM_SECONDS)."""
    deadline = time.monotonic() + 300
    while True:
        output = _finish(_start(workload, step), step)
        if step.name != "dispatch" or _nothing_due(workload, output):
            return
        assert time.monotonic() < deadline, "dispatch never finished the outbox"
        time.sleep(1)


def run_clean(workload: Workload) -> Outcome:
    outcome = Outcome()
    for index, step in enumerate(workload.steps):
        started = time.perf_counter()
        _complete(workload, step)
        outcome.seconds[f"{index}:{step.name}"] = time.perf_counter() - started
        outcome.attempts += 1
    return outcome


def run_killed(workload: Workload, clean: Outcome, kills: int, seed: int) -> Outcome:
    """The workload again, ``kills`` SIGKILLs shared evenly between the kinds of step
    (imports, passes, dispatch) and spread over their steps; each kill lands at a random
    point of the step's clean duration. A step is restarted after each kill, then run to
    completion."""
    rng = random.Random(seed)
    kinds = sorted({step.name for step in workload.steps})
    quota: Counter[int] = Counter()
    for n in range(kills):
        kind = kinds[n % len(kinds)]
        of_kind = [i for i, step in enumerate(workload.steps) if step.name == kind]
        quota[of_kind[(n // len(kinds)) % len(of_kind)]] += 1
    outcome = Outcome()
    for index, step in enumerate(workload.steps):
        duration = clean.seconds[f"{index}:{step.name}"]
        for _ in range(quota[index]):
            process = _start(workload, step)
            outcome.attempts += 1
            try:
                process.wait(timeout=duration * rng.uniform(KILL_FROM, KILL_UNTIL))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
                outcome.kills[step.name] += 1
                if step.name == "dispatch":  # the next dispatcher may only take the rows over
                    _wait_for_claims(workload)  # once the dead one's claims lapse
                continue
            _finish(process, step)  # done before the kill came: restarting it is a no-op
            outcome.finished_first += 1
        _complete(workload, step)
        outcome.attempts += 1
    return outcome


def run_racing(workload: Workload, copies: int = 2) -> Outcome:
    """The workload with every step started ``copies`` times at once (two operators, or
    a schedule and a trigger, running the same command): each copy must succeed, then
    the step is completed (dispatch until nothing is due)."""
    outcome = Outcome()
    for step in workload.steps:
        processes = [_start(workload, step) for _ in range(copies)]
        for process in processes:
            _finish(process, step)
            outcome.attempts += 1
        _complete(workload, step)
        outcome.attempts += 1
    return outcome


def snapshot(workload: Workload) -> dict[str, Any]:
    """What the store and the outbox hold, free of database ids and clocks."""
    engine: Engine = open_store(workload.database_url)
    try:
        with engine.connect() as connection:

            def rows(sql: str) -> Counter[tuple[Any, ...]]:
                return Counter(tuple(row) for row in connection.execute(text(sql)))

            found: dict[str, Any] = {
                "customers": rows("SELECT id, email, phone, merged_into FROM customers"),
                "events": rows(
                    "SELECT event_id, name, customer_id FROM events "
                    "WHERE name NOT LIKE 'journey.%' AND name NOT LIKE 'message.%'"
                ),
                "journey events": rows(
                    "SELECT name, customer_id, at FROM events WHERE name LIKE 'journey.%'"
                ),  # a pass's events carry its --now; the dispatcher's carry the real clock
                "message events": rows(
                    "SELECT name, customer_id FROM events WHERE name LIKE 'message.%'"
                ),
                "enrollments": rows(
                    "SELECT customer_id, journey_key, step_id, state, wake_at, entered_at "
                    "FROM enrollments"
                ),
                "decisions": rows(
                    "SELECT customer_id, journey_key, step_id, kind, reason, holdout, event_id, "
                    "at FROM journey_log"
                ),
                "messages": rows(
                    "SELECT customer_id, journey_key, step_id, channel, message_key, status "
                    "FROM messages"
                ),
            }
            keys = connection.execute(
                text("SELECT idempotency_key FROM messages WHERE status = 'sent'")
            ).scalars()
            found["sent keys"] = len(list(keys))
    finally:
        engine.dispose()
    files = [p for p in (workload.home / "outbox").rglob("*") if p.is_file()]
    found["outbox files"] = len(files)
    found["temporary files"] = sorted(p.name for p in files if p.name.startswith("."))
    return found


def another_database(store: Engine, url: str) -> str | None:
    """None for SQLite (a file under the workload's home); on PostgreSQL a second empty
    database on the same server."""
    if store.dialect.name == "sqlite":
        return None
    from tests.conftest import _fresh_postgres_database  # the suite's own helper

    return _fresh_postgres_database(url.rsplit("/", 1)[0] + "/postgres")
