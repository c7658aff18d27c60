"""The segments and backtest commands, run as the user runs them (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert

from omni_journey.lab.synthetic_orders import generate_orders
from omni_journey.store.tables import metadata

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def omni(engine: Engine, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "OMNI_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "OMNI_PROJECT_DIR": str(project),
        "OMNI_HOME": str(project / ".omni"),
    }
    return subprocess.run(
        [sys.executable, "-m", "omni_journey", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


@pytest.fixture
def project(tmp_path: Path, store: Engine) -> Path:
    (tmp_path / "segments").mkdir()
    (tmp_path / "segments" / "gold.yaml").write_text(
        "key: gold\nname: Gold tier\nmatch: {attribute: tier, equals: gold}\n"
    )
    (tmp_path / "segments" / "broken.yaml").write_text(
        "key: broken\nmatch: {attribute: tier, equal: gold}\n"
    )
    with store.begin() as connection:
        connection.execute(
            insert(metadata.tables["customers"]),
            [
                {
                    "id": f"c-{n}",
                    "attributes": {"tier": "gold" if n % 2 else "silver"},
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for n in range(5)
            ],
        )
        connection.execute(
            insert(metadata.tables["events"]),
            [
                {
                    "event_id": "a1",
                    "name": "product.added",
                    "customer_id": "c-0",
                    "at": NOW - timedelta(hours=5),
                    "received_at": NOW,
                    "properties": {},
                },
            ],
        )
    return tmp_path


def test_show_prints_size_and_a_sample(store: Engine, project: Path) -> None:
    result = omni(
        store, project, "segments", "show", "gold", "--sample", "1", "--now", NOW.isoformat()
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "gold: 2 customers at 2026-05-01T12:00:00+00:00",
        "  c-1",
        "  ... and 1 more",
    ]
    built_in = omni(
        store, project, "segments", "show", "cart_abandoners", "--json", "--now", NOW.isoformat()
    )
    assert json.loads(built_in.stdout)["sample"] == ["c-0"]


def test_show_explains_what_is_wrong(store: Engine, project: Path) -> None:
    broken = omni(store, project, "segments", "show", "broken")
    assert broken.returncode == 1
    assert "segments/broken.yaml:2:" in broken.stderr
    assert "error: segment 'broken' has errors" in broken.stderr
    unknown = omni(store, project, "segments", "show", "nope")
    assert unknown.returncode == 1
    assert "no segment 'nope' (known: " in unknown.stderr
    naive = omni(store, project, "segments", "show", "gold", "--now", "2026-05-01T12:00:00")
    assert naive.returncode == 2 and "no time zone" in naive.stderr


def test_evaluate_reports_deltas(store: Engine, project: Path) -> None:
    first = omni(store, project, "segments", "evaluate", "gold", "--now", NOW.isoformat(), "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["segments"]["gold"] == {
        "entered": ["c-1", "c-3"],
        "left": [],
        "size": 2,
        "baseline": True,
    }
    again = omni(store, project, "segments", "evaluate", "gold", "--now", NOW.isoformat())
    assert again.stdout.strip() == "gold: 2 members, +0 entered, -0 left"


def test_cycles_and_fan_out_run(store: Engine, project: Path) -> None:
    cycles = omni(store, project, "segments", "cycles", "--now", NOW.isoformat(), "--json")
    assert cycles.returncode == 0, cycles.stderr
    assert json.loads(cycles.stdout)["series"] == 0
    fan = omni(store, project, "segments", "fan-out", "--now", NOW.isoformat(), "--json")
    assert json.loads(fan.stdout) == {"catalogue_events": 0, "emitted": 0}


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_backtest_from_a_file(store: Engine, project: Path) -> None:
    shop = generate_orders(seed=3, customers=150, share_cyclic=0.5)
    orders = project / "orders.jsonl"
    orders.write_text(
        "".join(
            json.dumps(
                {
                    "customer_id": o.customer_id,
                    "at": o.at.isoformat(),
                    "category": o.category,
                    "amount": o.amount,
                }
            )
            + "\n"
            for o in shop.orders
        )
    )
    table = omni(store, project, "backtest", "purchase-cycles", "--orders", str(orders))
    assert table.returncode == 0, table.stderr
    assert "cycles" in table.stdout and "fixed_interval" in table.stdout
    as_json = omni(store, project, "backtest", "purchase-cycles", "--orders", str(orders), "--json")
    data = json.loads(as_json.stdout)
    assert data["orders"] == len(shop.orders)
    assert set(data["methods"]) == {"cycles", "fixed_interval", "after_n_days"}
    bad = project / "bad.jsonl"
    bad.write_text('{"customer_id": "c", "at": "soon", "category": "x"}\n')
    failed = omni(store, project, "backtest", "purchase-cycles", "--orders", str(bad))
    assert failed.returncode == 2
    assert f"{bad}:1: 'at' is not ISO 8601" in failed.stderr
