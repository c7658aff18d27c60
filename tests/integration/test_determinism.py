"""The same inputs and code give the same results: ``simulate --json`` and the demo.

Each run is its own process with its own ``PYTHONHASHSEED``, as two flow runs or two
CLI calls are: an iteration over a set of strings, a ``hash()``, a read of the clock or
an unordered SQL result that leaks into the results shows up as a difference. The
demo's core runs with :class:`~omni_journey.lab.direct.DirectPasses` (the calls the
Prefect flows make, without Prefect, whose per-run overhead would cost minutes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from omni_journey.lab.demo import DemoConfig, demo_settings, run_demo
from omni_journey.lab.direct import DirectPasses
from omni_journey.lab.shop import START, Shop
from omni_journey.settings import Settings
from omni_journey.store.core import JOURNEY_LOG, MESSAGES

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent / "omni-journey"
TICK = timedelta(hours=3)


def _env(hash_seed: str, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONHASHSEED": hash_seed,
        "OMNI_PROJECT_DIR": str(ROOT),
        "OMNI_HOME": str(home),
    }


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


# --- simulate ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two weeks of a seeded shop: profiles, browsing, carts, multi-category orders and
    the answers to a legacy tool's sends, many events of a customer at one instant."""
    folder = tmp_path_factory.mktemp("shop")
    profiles, events = Shop(11, 120).generate(days=14)
    return (
        _write_jsonl(folder / "customers.jsonl", profiles),
        _write_jsonl(folder / "events.jsonl", events),
    )


def _simulate(journey: str, files: tuple[Path, Path], hash_seed: str, home: Path) -> str:
    customers, events = files
    result = subprocess.run(
        [
            str(BIN),
            "simulate",
            journey,
            "--customers",
            str(customers),
            "--events",
            str(events),
            "--days",
            "14",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=_env(hash_seed, home),
        check=False,
        cwd=home.parent,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("journey", ["browse_abandonment", "post_purchase_cross_sell"])
def test_simulate_json_is_identical_across_processes_and_hash_seeds(
    journey: str, shop_files: tuple[Path, Path], tmp_path: Path
) -> None:
    first = _simulate(journey, shop_files, "1", tmp_path / "one")
    second = _simulate(journey, shop_files, "2", tmp_path / "two")
    replay = json.loads(first)
    assert replay["entered"] and replay["sends"]  # the replay did something to compare
    assert second == first


def test_simulate_without_events_needs_a_start_instead_of_the_clock(
    shop_files: tuple[Path, Path], tmp_path: Path
) -> None:
    customers, _ = shop_files
    empty = tmp_path / "none.jsonl"
    empty.write_text("")
    result = subprocess.run(
        [str(BIN), "simulate", "win_back", "--customers", str(customers), "--events", str(empty)],
        capture_output=True,
        text=True,
        env=_env("0", tmp_path / "home"),
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "--start" in result.stderr


# --- the demo ------------------------------------------------------------------------------

DEMO = DemoConfig(customers=80, days=3, seed=7, tick=TICK)


def demo_fingerprint(home: Path) -> dict[str, Any]:
    """Run the demo's core in ``home`` and return what it did: the summary, every
    message and every journey log row, in the order they were written."""
    settings = demo_settings(Settings(home=home, project_dir=ROOT))
    summary = run_demo(settings, DEMO, passes=lambda engine: DirectPasses(engine, settings))
    engine = create_engine(settings.resolved_database_url)
    try:
        with engine.connect() as connection:
            messages = connection.execute(
                select(
                    MESSAGES.c.customer_id,
                    MESSAGES.c.journey_key,
                    MESSAGES.c.step_id,
                    MESSAGES.c.channel,
                    MESSAGES.c.message_key,
                    MESSAGES.c.status,
                    MESSAGES.c.send_after,
                    MESSAGES.c.sent_at,
                ).order_by(MESSAGES.c.id)
            ).all()
            log = connection.execute(
                select(
                    JOURNEY_LOG.c.journey_key,
                    JOURNEY_LOG.c.customer_id,
                    JOURNEY_LOG.c.step_id,
                    JOURNEY_LOG.c.kind,
                    JOURNEY_LOG.c.reason,
                    JOURNEY_LOG.c.at,
                ).order_by(JOURNEY_LOG.c.id)
            ).all()
    finally:
        engine.dispose()
    return {
        "journeys": {k: dict(sorted(c.items())) for k, c in sorted(summary.journeys.items())},
        "sent_by_channel": dict(sorted(summary.sent_by_channel.items())),
        "feedback": dict(sorted(summary.feedback.items())),
        "events": summary.events,
        "failed": summary.failed,
        "suppressed": summary.suppressed,
        "messages": [[str(v) for v in row] for row in messages],
        "journey_log": [[str(v) for v in row] for row in log],
    }


def _demo_in_process(hash_seed: str, home: Path) -> dict[str, Any]:
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from tests.integration.test_determinism import demo_fingerprint\n"
        "print(json.dumps(demo_fingerprint(Path(sys.argv[1]))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(home)],
        capture_output=True,
        text=True,
        env=_env(hash_seed, home),
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    fingerprint: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return fingerprint


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    """The demo with one seed, run twice in processes with different hash seeds."""
    folder = tmp_path_factory.mktemp("demo")
    return _demo_in_process("1", folder / "one"), _demo_in_process("2", folder / "two")


@pytest.mark.slow
def test_demo_with_one_seed_is_identical_across_runs_and_hash_seeds(
    demo_runs: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    first, second = demo_runs
    assert sum(first["sent_by_channel"].values()) > 0 and first["feedback"]
    assert second["sent_by_channel"] == first["sent_by_channel"]
    assert second["journeys"] == first["journeys"]
    assert second["messages"] == first["messages"]
    assert second["journey_log"] == first["journey_log"]
    assert second == first


@pytest.mark.slow
def test_demo_stamps_every_send_with_the_simulated_time(
    demo_runs: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """Every ``sent_at`` is a pass's ``now`` (a tick), never ``now`` plus the seconds the
    pass took: the shop answers from ``sent_at``, so a wall-clock offset changed the demo."""
    sent = [row[7] for row in demo_runs[0]["messages"] if row[5] == "sent"]
    assert sent
    ticks = {str(START + i * TICK) for i in range(1, int(timedelta(days=DEMO.days) / TICK) + 1)}
    assert set(sent) <= ticks
