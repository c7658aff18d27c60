"""``omni-journey simulate --json`` on the shipped cart abandonment journey."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from omni_journey.engine import holdout_bucket
from omni_journey.spec.project import load_project

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent / "omni-journey"
T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


def _write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_cart_abandonment_reminds_exactly_the_half_that_did_not_buy(tmp_path: Path) -> None:
    ids = [f"c-{i:02d}" for i in range(40)]
    customers = [
        {
            "customer_id": c,
            "email": f"{c}@example.com",
            "timezone": "Europe/Berlin",
            "consent": {"email": True, "push": False, "sms": False},
            "attributes": {"first_name": c},
        }
        for c in ids
    ]
    buyers = set(ids[::2])
    events: list[dict[str, object]] = [
        {
            "id": f"add-{c}",
            "name": "product.added",
            "customer_id": c,
            "at": T0.isoformat(),
            "properties": {"sku": "SERUM-30", "price": 24.0},
        }
        for c in ids
    ] + [
        {
            "id": f"order-{c}",
            "name": "order.completed",
            "customer_id": c,
            "at": (T0 + timedelta(minutes=20)).isoformat(),
            "properties": {"order_id": f"o-{c}", "total": 24.0, "currency": "EUR"},
        }
        for c in sorted(buyers)
    ]
    env = {**os.environ, "OMNI_PROJECT_DIR": str(ROOT), "OMNI_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [
            str(BIN),
            "simulate",
            "cart_abandonment",
            "--customers",
            str(_write_jsonl(tmp_path / "customers.jsonl", customers)),
            "--events",
            str(_write_jsonl(tmp_path / "events.jsonl", events)),
            "--days",
            "3",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    holdout = load_project(ROOT).journeys["cart_abandonment"].holdout or 0
    in_holdout = {c for c in ids if holdout_bucket("cart_abandonment", c) < holdout}
    reminded = {s["customer_id"] for s in out["sends"] if s["step"] == "remind"}
    assert reminded == set(ids) - buyers - in_holdout
    assert all(s["channel"] == "email" for s in out["sends"])  # no push token: fallback
    assert {e["customer_id"] for e in out["entered"]} == set(ids)
    exited_by_order = {
        e["customer_id"] for e in out["exits"] if e["reason"] == "exit_when:order.completed"
    }
    assert exited_by_order == buyers  # the holdout group exits on purchase too
    assert {c["customer_id"] for c in out["conversions"]} == buyers
    assert out["steps"]["remind"]["sent"] == len(reminded)
    assert set(out) >= {
        "journey",
        "version",
        "from",
        "to",
        "entered",
        "sends",
        "skips",
        "conversions",
        "exits",
        "steps",
    }
