"""Journeys and dispatch as 1, 2 and 4 worker processes on one PostgreSQL database.

Each run starts every step (two passes, then dispatch) as N ``omni-journey``
processes at once, one per shard (``--shard i/N``). Whatever N, the store and the
outbox must end exactly as with one worker: the same enrollments, decisions, journey
events, messages and message events, every message sent once (one outbox file each).
A worker killed with SIGKILL in the middle of its shard releases it with its
connection, and the next worker started for that shard finishes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from omni_journey.store import open_store
from omni_journey.store.shards import Shard
from tests.integration.scaling.workers import Shop, kill_when, run_all, run_pass, start
from tests.reliability.crash import Workload, snapshot

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def one_worker(shop: Shop, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workload = shop.workload(tmp_path_factory.mktemp("one-worker"))
    reports = run_all(shop, workload, 1)
    expected = snapshot(workload)
    assert expected["decisions"] and expected["messages"]  # the shop does something
    assert expected["outbox files"] == expected["sent keys"] == reports[0]["sent"] > 0
    return expected


@pytest.mark.parametrize("workers", [2, 4])
def test_n_workers_end_where_one_worker_ends(
    shop: Shop, one_worker: dict[str, Any], tmp_path: Path, workers: int
) -> None:
    workload = shop.workload(tmp_path)
    reports = run_all(shop, workload, workers)
    found = snapshot(workload)
    for part in one_worker:
        assert found[part] == one_worker[part], part
    # every dispatcher sent its shard's messages, and only those
    assert sum(report["sent"] for report in reports) == one_worker["sent keys"]
    assert all(report["sent"] > 0 for report in reports)
    assert _journey_layout(workload) == {workers}


def test_a_killed_worker_s_shard_is_finished_by_the_next_worker(
    shop: Shop, one_worker: dict[str, Any], tmp_path: Path
) -> None:
    workload = shop.workload(tmp_path)
    first, later = shop.passes
    args = ("run", "--now", first, "--no-dispatch", "--shard")
    victim = Shard(2, 4)
    others = [start(workload, (*args, f"{i}/4")) for i in (1, 3, 4)]
    doomed = start(workload, (*args, str(victim)))
    # killed once its shard has committed some of its decisions, not all of them
    killed = kill_when(doomed, lambda: _decided(workload, victim) > 0)
    assert killed, "the worker finished its shard before it could be killed"
    for process in others:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    partial = _decided(workload, victim)
    # the next worker for the shard: the dead one's lock went with its connection
    _, err = start(workload, (*args, str(victim))).communicate(timeout=300)
    assert "error" not in err.lower()
    assert _decided(workload, victim) > partial
    # then one worker again (the journeys go back to one shard), and dispatch
    run_pass(workload, later, 1)
    process = start(workload, ("dispatch", "--json"))
    process.communicate(timeout=300)
    found = snapshot(workload)
    for part in one_worker:
        assert found[part] == one_worker[part], part
    assert _journey_layout(workload) == {1}


def _decided(workload: Workload, shard: Shard) -> int:
    """Decisions recorded so far for the customers of ``shard``."""
    engine = open_store(workload.database_url)
    try:
        with engine.connect() as connection:
            customers = connection.execute(text("SELECT customer_id FROM journey_log")).scalars()
            return sum(1 for customer in customers if shard.holds(customer))
    finally:
        engine.dispose()


def _journey_layout(workload: Workload) -> set[int]:
    engine = open_store(workload.database_url)
    try:
        with engine.connect() as connection:
            return set(connection.execute(text("SELECT shards FROM journey_cursors")).scalars())
    finally:
        engine.dispose()
