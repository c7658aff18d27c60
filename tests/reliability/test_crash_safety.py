"""Crash safety: the whole product killed with SIGKILL at random points, restarted until
the work completes, ends exactly where an uninterrupted run ends.

Every command runs as an operator would run it (``omni-journey`` subprocesses on a real
SQLite file or a real PostgreSQL database, the file outbox): customers import, events
imports in chunks, journey passes, dispatch. A killed run must store every event once,
lose and duplicate no enrollment or decision, and send every message exactly once (one
outbox file per message, every row sent, no temporary file left).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.reliability.crash import Workload, another_database, run_clean, run_killed, snapshot

pytestmark = pytest.mark.slow


def test_killed_at_random_points_the_product_ends_where_a_clean_run_ends(
    store: Engine, tmp_path: Path, kills: int, kill_seed: int
) -> None:
    url = store.url.render_as_string(hide_password=False)
    store.dispose()
    clean_url = None if store.dialect.name == "sqlite" else url
    clean = Workload.shop(tmp_path / "clean", clean_url)
    timings = run_clean(clean)
    expected = snapshot(clean)
    assert expected["messages"] and expected["decisions"]  # the workload does something
    assert expected["outbox files"] == expected["sent keys"] > 0

    killed = Workload.shop(tmp_path / "killed", another_database(store, url))
    outcome = run_killed(killed, timings, kills, kill_seed)
    found = snapshot(killed)

    report = {
        "store": store.dialect.name,
        "kills": dict(outcome.kills),
        "attempts": outcome.attempts,
        "finished before the kill": outcome.finished_first,
        "messages": expected["sent keys"],
        "decisions": sum(expected["decisions"].values()),
    }
    print(json.dumps(report))  # the figures of docs/reliability.md
    assert outcome.kills.total() >= kills // 2, report  # most kill points were mid-work
    assert len(outcome.kills) == len({step.name for step in killed.steps}), report
    for part in expected:
        assert found[part] == expected[part], (part, report)
    assert found["temporary files"] == []
