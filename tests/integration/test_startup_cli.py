"""Commands that neither train nor score run without scikit-learn, scipy, matplotlib or
Prefect: each runs for real (a SQLite store under a temporary OMNI_HOME, the shipped
journeys) in a fresh child Python that then reports what it imported."""

from __future__ import annotations

import json
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
