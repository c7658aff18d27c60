"""Journey passes and dispatch run as N worker processes on one PostgreSQL database.

The shop of the crash harness (tests/reliability/crash.py), small: its customers and
events are imported once into a template database, and each run gets a copy of it
(``CREATE DATABASE ... TEMPLATE``). A run is then two passes and a dispatch, each step
started as N ``omni-journey`` processes at once (``--shard 1/N`` to ``N/N``), every one
of which must succeed before the next step starts. :func:`snapshot` (the crash
harness's) reads what the store and the outbox hold, so runs with different N compare.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.reliability.crash import COMMAND, Workload, _iso

CUSTOMERS, EVENTS = 300, 2400


@dataclass(frozen=True)
class Shop:
    """A template database holding the shop, and the commands' times."""

    server_url: str  # the maintenance database
    template: str
    passes: tuple[str, ...]  # the --now of each pass
    base: Workload

    def workload(self, work: Path) -> Workload:
        """A fresh copy of the shop in its own database, with its own home (outbox)."""
        name = f"omni_{uuid.uuid4().hex[:12]}"
        admin = create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        admin.dispose()
        url = self.server_url.rsplit("/", 1)[0] + f"/{name}"
        home = work / "home"
        home.mkdir(parents=True)
        env = dict(self.base.env, OMNI_HOME=str(home), OMNI_DATABASE_URL=url)
        return replace(self.base, env=env, home=home, database_url=url)


def make_shop(server_url: str, work: Path) -> Shop:
    """Import the crash harness's shop (all its event chunks) into a new database, to be
    copied by each run. Trigger events stay eligible (a long OMNI_TRIGGER_MAX_AGE_HOURS),
    so the first pass enters everyone their events trigger."""
    name = f"omni_tmpl_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = server_url.rsplit("/", 1)[0] + f"/{name}"
    base = Workload.shop(work, url, customers=CUSTOMERS, events=EVENTS)
    # one batch holds all of a customer's pending events, whatever the worker count (a
    # batch's grouping decides, e.g., which of two triggers enters); the rule decides
    # channels and send times per customer (the learned policy without a model shrinks
    # send times toward the hours of whoever shares the batch)
    base.env.update(
        OMNI_TRIGGER_MAX_AGE_HOURS="10000", OMNI_BATCH_SIZE="5000", OMNI_CHANNEL_POLICY="rule"
    )
    imports = [step for step in base.steps if step.name.endswith("import")]
    for step in imports:
        finish(start(base, step.args))
    last = [step for step in base.steps if step.name == "run"][-3]  # the last chunk's pass
    end = _time(last.args[last.args.index("--now") + 1])
    passes = (_iso(end), _iso(end + timedelta(days=2)))
    return Shop(server_url, name, passes, base)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def start(workload: Workload, args: Sequence[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [COMMAND, *args],
        env=workload.env,
        cwd=workload.home.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, f"{process.args!r} failed ({process.returncode}):\n{out}\n{err}"
    return out


def shards(count: int) -> list[tuple[str, ...]]:
    """The ``--shard`` arguments of ``count`` workers (none for one worker)."""
    if count == 1:
        return [()]
    return [("--shard", f"{i}/{count}") for i in range(1, count + 1)]


def at_once(workload: Workload, args: Sequence[str], count: int) -> list[str]:
    """``args`` started as ``count`` workers at once, one per shard; their outputs."""
    processes = [start(workload, (*args, *shard)) for shard in shards(count)]
    return [finish(process) for process in processes]


def run_pass(workload: Workload, now: str, count: int) -> None:
    at_once(workload, ("run", "--now", now, "--no-dispatch"), count)


def dispatch(workload: Workload, count: int) -> list[dict[str, int]]:
    """Dispatch as ``count`` workers; each one's report."""
    outputs = at_once(workload, ("dispatch", "--json"), count)
    return [json.loads(out.strip().splitlines()[-1]) for out in outputs]


def run_all(shop: Shop, workload: Workload, count: int) -> list[dict[str, int]]:
    for now in shop.passes:
        run_pass(workload, now, count)
    return dispatch(workload, count)


def kill_when(
    process: subprocess.Popen[str], ready: Callable[[], bool], timeout: float = 120
) -> bool:
    """SIGKILL ``process`` (its whole group) as soon as ``ready()``; whether it was still
    running then (``False``: it had finished first)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the worker never got going"
        time.sleep(0.01)
    if process.poll() is not None:
        return False
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    return True
