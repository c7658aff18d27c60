"""Commands that only read never create a store: pointed at a SQLite file that does not
exist (the default ``.omni/omni.db`` after a demo, which writes to ``.omni/demo``), they
say where they looked and where the demo's store is, and leave no empty store behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from omni_journey.store.db import StoreNotFoundError, open_existing_store, open_store

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent / "omni-journey"

READERS = [
    ["customers", "show", "c-000261"],
    ["customers", "export", "c-000261"],
    ["explain", "c-000261", "--journey", "cart_abandonment"],
    ["preview", "cart_reminder", "--customer", "c-000261"],
    ["messages", "in-doubt"],
    ["report"],
]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")}
    env |= {"OMNI_PROJECT_DIR": str(ROOT), "COLUMNS": "200"}
    return subprocess.run(
        [str(BIN), *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def test_open_existing_store_refuses_a_missing_sqlite_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "omni.db"
    with pytest.raises(StoreNotFoundError) as raised:
        open_existing_store(f"sqlite:///{missing}")
    assert raised.value.path == missing
    assert not missing.parent.exists()
    engine = open_store(f"sqlite:///{missing}")  # a writer creates it
    engine.dispose()
    open_existing_store(f"sqlite:///{missing}").dispose()  # and then it opens


@pytest.mark.parametrize("args", READERS, ids=lambda a: " ".join(a[:2]))
def test_a_reading_command_on_a_missing_store_says_so_and_creates_nothing(
    args: list[str], tmp_path: Path
) -> None:
    result = _run(args, tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no store at .omni/omni.db" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / ".omni").exists()


def test_after_a_demo_the_message_names_the_demo_store(tmp_path: Path) -> None:
    demo = tmp_path / ".omni" / "demo"
    open_store(f"sqlite:///{demo / 'omni.db'}").dispose()  # what the demo leaves
    result = _run(["preview", "cart_reminder", "--customer", "c-000261"], tmp_path)
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "no store at .omni/omni.db" in message
    assert "the demo's store is at .omni/demo: set OMNI_HOME=.omni/demo" in message
    assert not (tmp_path / ".omni" / "omni.db").exists()
