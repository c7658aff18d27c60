"""Commands that neither train nor score run without scikit-learn, scipy, matplotlib or
Prefect: each runs for real (a SQLite store under a temporary OMNI_HOME, the shipped
journeys) in a fresh child Python that then reports what it imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_startup import ROOT, run_in_process

PROFILE = {
    "customer_id": "c-1",
    "email": "c-1@example.com",
    "timezone": "Europe/Berlin",
    "consent": {"email": True},
    "attributes": {"first_name": "Ana"},
}


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", "journeys/", "segments/"],
        ["customers", "import", "{customers}"],
        ["db", "upgrade"],
        ["segments", "list"],
        ["run", "--no-dispatch", "--now", "2026-05-01T10:00Z"],
        ["dispatch"],
    ],
    ids=lambda argv: " ".join(argv[:2]),
)
def test_light_command_imports_nothing_heavy(argv: list[str], tmp_path: Path) -> None:
    customers = tmp_path / "customers.jsonl"
    customers.write_text(json.dumps(PROFILE) + "\n")
    args = [arg.format(customers=customers) for arg in argv]
    [record], printed = run_in_process([args], tmp_path, OMNI_PROJECT_DIR=str(ROOT))
    assert record["code"] == 0, printed
    assert record["heavy"] == [], record["heavy"][:10]
    if argv[0] == "customers":
        assert "accepted 1" in printed


def test_a_pass_without_dispatch_loads_no_sending_code(tmp_path: Path) -> None:
    """``run --no-dispatch`` queues messages: it loads neither the dispatcher nor the
    renderer (Jinja2), nor the address checks (phonenumbers, email-validator), nor,
    with no channel model trained, numpy (the rule decides in plain Python)."""
    [record], printed = run_in_process(
        [["run", "--no-dispatch", "--now", "2026-05-01T10:00Z"]],
        tmp_path,
        heavy=("jinja2", "phonenumbers", "email_validator", "numpy"),
        OMNI_PROJECT_DIR=str(ROOT),
    )
    assert record["code"] == 0, printed
    assert "omni_journey.delivery.outbox" in record["ours"]  # it does queue
    assert "omni_journey.delivery.dispatcher" not in record["ours"]
    assert not any(m.startswith("omni_journey.render") for m in record["ours"])
    assert record["heavy"] == []


def test_the_pass_table_never_cuts_a_journey_name_into_a_pipe(tmp_path: Path) -> None:
    """Into a pipe (no terminal, no COLUMNS), ``run`` prints its table 120 columns wide:
    the longest journey key whole, every header on one line (rich's 80 columns cut both)."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env.update(OMNI_HOME=str(tmp_path / "home"), OMNI_PROJECT_DIR=str(ROOT))
    order = {
        "id": "o-1", "name": "order.completed", "customer_id": "c-1",
        "at": "2026-05-01T09:00:00Z",
        "properties": {"order_id": "o-1", "total": 20.0, "currency": "EUR",
                       "products": [{"sku": "S-1", "name": "Serum", "price": 20.0}]},
    }  # fmt: skip
    (tmp_path / "c.jsonl").write_text(json.dumps(PROFILE) + "\n")
    (tmp_path / "e.jsonl").write_text(json.dumps(order) + "\n")
    printed = ""
    for argv in (
        ["customers", "import", str(tmp_path / "c.jsonl")],
        ["events", "import", str(tmp_path / "e.jsonl")],
        ["run", "--no-dispatch", "--now", "2026-05-01T10:00Z"],
    ):
        printed = subprocess.run(
            [sys.executable, "-m", "omni_journey", *argv],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True,
        ).stdout  # fmt: skip
    lines = printed.splitlines()
    rows = [line.split()[:2] for line in lines]
    assert ["post_purchase_cross_sell", "1"] in rows, printed
    header = next(line for line in lines if "journey " in line and "entered" in line)
    assert header.split() == [
        "journey", "entered", "queued", "skipped", "deferred", "exited", "completed", "converted",
    ]  # fmt: skip
