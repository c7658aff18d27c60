"""``omni-journey train`` and ``omni-journey evaluate`` as subprocesses on a simulated shop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from omni_journey.channels.artefacts import CHANNEL_MODELS
from omni_journey.channels.learned import LearnedPolicy, parse_costs
from omni_journey.settings import Settings
from omni_journey.store import open_store
from tests.integration.channels.conftest import by, simulated_shop

BIN = Path(sys.executable).parent / "omni-journey"


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMNI_HOME": str(home), "OMNI_CHANNEL_MIN_CONVERSIONS": "20"}
    env.pop("OMNI_DATABASE_URL", None)
    return subprocess.run(
        [str(BIN), *args], env=env, capture_output=True, text=True, check=False, timeout=300
    )


def test_train_then_evaluate(tmp_path: Path) -> None:
    home = tmp_path / "home"
    empty = _run(home, "train", "--now", "2026-03-20T00:00Z")
    assert empty.returncode == 1
    assert "not enough data: 0 converted decisions" in empty.stderr

    engine = open_store(f"sqlite:///{home / 'omni.db'}")
    sim = simulated_shop(engine, home, seed=21, customers=1200, days=30)
    explorer = LearnedPolicy(costs=parse_costs(Settings().channel_costs), cold_epsilon=1.0)
    for week in range(2):
        sim.round(by(explorer), sim.reachable(), f"w{week}")
    engine.dispose()
    now = sim.now.isoformat()

    trained = _run(home, "train", "--now", now, "--json")
    assert trained.returncode == 0, trained.stderr
    card = json.loads(trained.stdout)
    assert card["version"].startswith("cm-")
    assert card["metrics"]["click"]["rows"] > 2000
    assert (home / "models" / card["version"] / "weights.npz").is_file()
    engine = open_store(f"sqlite:///{home / 'omni.db'}")
    with engine.connect() as connection:
        rows = list(connection.execute(select(CHANNEL_MODELS)))
    engine.dispose()
    assert [(r.version, r.status) for r in rows] == [(card["version"], "active")]

    evaluated = _run(home, "evaluate", "--now", now, "--json", "--bootstrap", "50")
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads(evaluated.stdout)
    assert result["decisions"] > 2000
    assert {e["policy"] for e in result["estimates"]} == {
        "learned", "email", "random", "rule", "most-engaged"
    }  # fmt: skip
    assert any("optimistic" in w for w in result["warnings"])  # evaluated on its training data
    for e in result["estimates"]:
        assert e["dr_low"] <= e["dr"] <= e["dr_high"]

    table = _run(home, "evaluate", "--now", now, "--policy", "email", "--policy", "braze")
    assert table.returncode == 2
    assert "unknown policy 'braze'" in table.stderr


def test_the_evaluation_table_reads_well(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    from omni_journey.channels.evaluate import Evaluation, PolicyEstimate
    from omni_journey.cli.channels_cmd import _print_evaluation

    estimate = PolicyEstimate("most-engaged", 101.0, 80.0, 120.0, 99.5, 85.0, 113.0, 97.0,
                              0.98, 2500.0)  # fmt: skip
    _print_evaluation(
        Evaluation(
            3000,
            2000,
            130.0,
            120.0,
            140.0,
            {"learned-v1": 3000},
            [estimate],
            25.0,
            {},
            ["learned: 2% of its choices were never possible"],
        )
    )
    out = capsys.readouterr().out
    assert "3,000 best-channel decisions of 2,000 customers" in out
    assert "most-engaged" in out and "99.5 [85.0, 113.0]" in out
    assert "logged (ran)" in out and "warning:" in out
