"""``events import``, ``customers import`` and ``track`` as subprocesses, on input past
ingestion's limits: every good line is stored, every bad one reported with a reason."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Table, select

from omni_journey.store.tables import metadata

BIN = Path(sys.executable).parent / "omni-journey"
events: Table = metadata.tables["events"]
customers: Table = metadata.tables["customers"]

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run(store: Engine, tmp_path: Path) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")}
    env |= {
        "OMNI_HOME": str(tmp_path / "home"),
        "OMNI_DATABASE_URL": store.url.render_as_string(hide_password=False),
        "COLUMNS": "200",
    }

    def _run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )

    return _run


def _stored(store: Engine, table: Table) -> list[Any]:
    with store.connect() as connection:
        return list(connection.execute(select(table)))


def _rejects(stdout: str) -> list[dict[str, Any]]:
    match = re.search(r"rejects written to (\S+)", stdout)
    assert match is not None, stdout
    return [json.loads(line) for line in Path(match.group(1)).read_text().splitlines()]


def test_events_import_keeps_the_good_lines_around_overflowing_times(
    run: Run, store: Engine, tmp_path: Path
) -> None:
    times = ["2026-05-01T10:00:00Z", "0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"]
    source = tmp_path / "events.jsonl"
    source.write_text(
        "".join(
            json.dumps({"id": f"e-{i}", "name": "x", "customer_id": "c-1", "at": times[i % 3]})
            + "\n"
            for i in range(9)
        )
    )
    result = run("events", "import", str(source))
    assert result.returncode == 0, result.stderr
    assert "accepted 3, duplicates 0, rejected 6" in result.stdout
    assert "Traceback" not in result.stderr
    assert {r["reason"] for r in _rejects(result.stdout)} == {"invalid-timestamp"}
    assert sorted(r.event_id for r in _stored(store, events)) == ["e-0", "e-3", "e-6"]


def test_customers_import_reports_an_identity_conflict(
    run: Run, store: Engine, tmp_path: Path
) -> None:
    source = tmp_path / "customers.csv"
    source.write_text(
        "customer_id,email,at\n"
        "c-1,ana@example.com,\n"
        "c-2,ana@example.com,\n"
        "c-3,bob@example.com,0001-01-01T00:00:00+05:00\n"
        "c-4,cy@example.com,\n"
    )
    result = run("customers", "import", str(source))
    assert result.returncode == 0, result.stderr
    assert "accepted 2, duplicates 0, rejected 2" in result.stdout
    assert [(r["line"], r["reason"]) for r in _rejects(result.stdout)] == [
        (3, "identity-conflict"),
        (4, "invalid-timestamp"),
    ]
    assert {(r.id, r.merged_into) for r in _stored(store, customers)} == {
        ("c-1", None),
        ("c-4", None),
    }


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"])
def test_track_at_out_of_range_is_a_clear_error(run: Run, store: Engine, at: str) -> None:
    result = run("track", "x", "--customer", "c-1", "--at", at)
    assert result.returncode == 1
    assert "invalid-timestamp" in result.stderr
    assert "Traceback" not in result.stderr
    assert _stored(store, events) == []
