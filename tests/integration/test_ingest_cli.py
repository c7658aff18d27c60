"""``omni-journey events import``, ``customers import`` and ``track`` as subprocesses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, Table, select

from omni_journey.store.tables import metadata

BIN = Path(sys.executable).parent / "omni-journey"
events: Table = metadata.tables["events"]
customers: Table = metadata.tables["customers"]


@pytest.fixture
def run(store: Engine, tmp_path: Path):  # type: ignore[no-untyped-def]
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


def _stored(store: Engine, table: Table) -> list[dict[str, object]]:
    with store.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(select(table))]


def test_events_import_reports_and_writes_rejects(run, store: Engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "events.jsonl"
    good = [
        {
            "id": f"e-{i}",
            "name": "product.viewed",
            "customer_id": "c-1",
            "at": "2026-05-01T10:00:00Z",
        }
        for i in range(3)
    ]
    lines = [json.dumps(good[0]), "{oops", json.dumps(good[1]), json.dumps(good[2])]
    source.write_text("\n".join(lines) + "\n")

    first = run("events", "import", str(source))
    assert first.returncode == 0, first.stderr
    assert "accepted 3, duplicates 0, rejected 1" in first.stdout
    match = re.search(r"rejects written to (\S+)", first.stdout)
    assert match is not None
    rejects = [json.loads(x) for x in Path(match.group(1)).read_text().splitlines()]
    assert rejects == [
        {
            "line": 2,
            "reason": "invalid-json",
            "detail": "the line is not valid JSON",
            "raw": "{oops",
        }
    ]
    assert Path(match.group(1)).is_relative_to(tmp_path / "home" / "rejects")
    assert len(_stored(store, events)) == 3

    second = run("events", "import", str(source))
    assert second.returncode == 0
    assert "accepted 0, duplicates 3, rejected 1" in second.stdout


def test_customers_import_csv_with_explicit_format(run, store: Engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "export.txt"
    source.write_text(
        "customer_id,email,consent.email,attributes.tier\nc-1,ana@example.com,true,gold\n"
    )
    result = run("customers", "import", str(source), "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert "accepted 1, duplicates 0, rejected 0" in result.stdout
    assert "rejects written" not in result.stdout
    (row,) = _stored(store, customers)
    assert (row["email"], row["attributes"]) == ("ana@example.com", {"tier": "gold"})


def test_unreadable_files_exit_2(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    missing = run("events", "import", str(tmp_path / "missing.jsonl"))
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr
    header = tmp_path / "bad.csv"
    header.write_text("id,name,at,emial\n")
    wrong = run("events", "import", str(header))
    assert wrong.returncode == 2
    assert "unknown columns: 'emial'" in wrong.stderr
    unknown = tmp_path / "events.xml"
    unknown.write_text("<x/>")
    assert run("events", "import", str(unknown)).returncode == 2


def test_track_stores_one_event(run, store: Engine) -> None:  # type: ignore[no-untyped-def]
    args = ["track", "order.completed", "--customer", "c-9", "--id", "o-1"]
    props = ["--prop", "total=48.5", "--prop", "currency=EUR", "--prop", 'products=[{"sku": "S"}]']
    result = run(*args, *props, "--at", "2026-05-01T10:00:00+02:00")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "o-1"
    again = run(*args, "--at", "2026-05-01T10:00:00+02:00")
    assert "already stored" in again.stdout
    (row,) = _stored(store, events)
    assert (row["name"], row["customer_id"]) == ("order.completed", "c-9")
    assert row["properties"] == {"total": 48.5, "currency": "EUR", "products": [{"sku": "S"}]}

    generated = run("track", "product.viewed", "--customer", "c-9")
    assert generated.returncode == 0
    assert generated.stdout.startswith("evt-")

    naive = run("track", "x", "--customer", "c-9", "--at", "2026-05-01T10:00:00")
    assert naive.returncode == 1
    assert "invalid-timestamp" in naive.stderr
    assert run("track", "x", "--customer", "c-9", "--prop", "novalue").returncode == 2
