"""``omni-journey simulate --json`` on the shipped replenishment journey, end to end."""

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
DAY = datetime(2026, 5, 4, tzinfo=UTC)  # a Monday
DUE_AT = DAY.replace(hour=5)  # 07:00 in Berlin: quiet hours until 09:00 hold the reminder


def _write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _order(customer_id: str, at: datetime, tag: str, category: str = "coffee") -> dict[str, object]:
    return {
        "id": f"order-{tag}-{customer_id}",
        "name": "order.completed",
        "customer_id": customer_id,
        "at": at.isoformat(),
        "properties": {
            "order_id": f"o-{tag}-{customer_id}",
            "total": 18.0,
            "currency": "EUR",
            "category": category,
        },
    }


def _due(customer_id: str, category: str) -> dict[str, object]:
    """What the purchase-cycle job emits early in the predicted window."""
    return {
        "id": f"due-{customer_id}",
        "name": "purchase_cycle.due",
        "customer_id": customer_id,
        "at": DUE_AT.isoformat(),
        "properties": {
            "category": category,
            "predicted_at": (DAY + timedelta(days=3)).isoformat(),
            "window_start": (DAY + timedelta(days=1)).isoformat(),
            "window_end": (DAY + timedelta(days=5)).isoformat(),
            "confidence": 0.8,
        },
    }


def test_replenishment_reminds_due_coffee_buyers_who_did_not_reorder(tmp_path: Path) -> None:
    coffee = [f"c-{i:02d}" for i in range(30)]
    tea = [f"t-{i:02d}" for i in range(5)]  # due, but not for coffee: the filter keeps them out
    early = set(coffee[:8])  # reorder at 08:00 Berlin, before the 09:00 reminder
    late = set(coffee[8:16])  # reorder the day after the reminder
    customers = [
        {
            "customer_id": c,
            "email": f"{c}@example.com",
            "timezone": "Europe/Berlin",
            "consent": {"email": True, "push": False, "sms": False},
            "attributes": {"first_name": c},
        }
        for c in coffee + tea
    ]
    history = [
        _order(c, DAY - timedelta(days=days), f"h{days}", "coffee" if c in coffee else "tea")
        for c in coffee + tea
        for days in (60, 30)
    ]
    events = (
        history
        + [_due(c, "coffee") for c in coffee]
        + [_due(c, "tea") for c in tea]
        + [_order(c, DUE_AT + timedelta(hours=1), "early") for c in sorted(early)]
        + [_order(c, DUE_AT + timedelta(days=1), "late") for c in sorted(late)]
    )
    env = {**os.environ, "OMNI_PROJECT_DIR": str(ROOT), "OMNI_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [
            str(BIN),
            "simulate",
            "replenishment",
            "--customers",
            str(_write_jsonl(tmp_path / "customers.jsonl", customers)),
            "--events",
            str(_write_jsonl(tmp_path / "events.jsonl", events)),
            "--start",
            DAY.isoformat(),
            "--days",
            "14",
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
    holdout = load_project(ROOT).journeys["replenishment"].holdout or 0
    in_holdout = {c for c in coffee if holdout_bucket("replenishment", c) < holdout}

    assert {e["customer_id"] for e in out["entered"]} == set(coffee)
    reminded = {s["customer_id"] for s in out["sends"] if s["step"] == "remind"}
    assert reminded == set(coffee) - early - in_holdout
    assert all(s["message"] == "replenish_reminder" for s in out["sends"] if s["step"] == "remind")
    # the reminder waited for the end of quiet hours: 09:00 in Berlin
    assert {s["at"] for s in out["sends"] if s["step"] == "remind"} == {"2026-05-04T07:00:00Z"}
    exited_early = {
        e["customer_id"] for e in out["exits"] if e["reason"] == "exit_when:order.completed"
    }
    assert early <= exited_early
    assert {c["customer_id"] for c in out["conversions"]} == early | late
    assert out["steps"]["remind"]["sent"] == len(reminded)
