"""The cross-journey frequency cap holds when two journeys advance the same customers
at the same moment (two passes, as the Prefect deployment runs them), on a real
PostgreSQL and a real SQLite file: nobody gets more messages than the cap allows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from omni_journey.store import open_store

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
COMMAND = str(Path(sys.executable).parent / "omni-journey")
CUSTOMERS = 1500
JOURNEY = """\
key: {key}
name: Ping {key}
trigger:
  event: ping
entry:
  re_entry: never
steps:
  - id: hello
    type: send
    message: welcome
    channel: email
"""


def _project(folder: Path) -> Path:
    (folder / "journeys").mkdir(parents=True)
    for key in ("ping_a", "ping_b"):
        (folder / "journeys" / f"{key}.yaml").write_text(JOURNEY.format(key=key))
    shutil.copytree(ROOT / "templates", folder / "templates")
    (folder / "segments").mkdir()
    return folder


def _data(folder: Path) -> tuple[Path, Path]:
    customers, events = folder / "customers.jsonl", folder / "events.jsonl"
    with customers.open("w") as c, events.open("w") as e:
        for i in range(CUSTOMERS):
            cid = f"c-{i:05d}"
            c.write(json.dumps({"customer_id": cid, "email": f"{cid}@example.com",
                                "consent": {"email": True}}) + "\n")  # fmt: skip
            e.write(json.dumps({"id": f"p-{i}", "name": "ping", "customer_id": cid,
                                "at": "2026-11-02T09:00:00Z"}) + "\n")  # fmt: skip
    return customers, events


def _run(env: dict[str, str], *args: str) -> None:
    result = subprocess.run([COMMAND, *args], env=env, capture_output=True, text=True,
                            timeout=600, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_two_journeys_passing_at_once_never_exceed_the_global_cap(
    store: Engine, tmp_path: Path
) -> None:
    url = store.url.render_as_string(hide_password=False)
    store.dispose()
    project = _project(tmp_path / "project")
    customers, events = _data(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNI_", "PREFECT_"))}
    env.update(
        OMNI_HOME=str(tmp_path / "home"),
        OMNI_PROJECT_DIR=str(project),
        OMNI_DATABASE_URL=url,
        OMNI_SECRET_KEY="cap-race-test-secret-key",
        OMNI_FREQUENCY_CAP="1/1d",
        OMNI_CHANNEL_POLICY="rule",
    )
    _run(env, "customers", "import", str(customers))
    _run(env, "events", "import", str(events))
    passes = [
        subprocess.Popen(
            [COMMAND, "run", "--journey", key, "--now", "2026-11-02T09:05:00Z", "--no-dispatch"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for key in ("ping_a", "ping_b")
    ]
    for process in passes:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, out + err

    engine = open_store(url)
    try:
        with engine.connect() as connection:
            sent = Counter(connection.execute(text("SELECT customer_id FROM messages")).scalars())
            capped = connection.execute(
                text("SELECT count(*) FROM journey_log WHERE reason = 'frequency_cap'")
            ).scalar_one()
    finally:
        engine.dispose()
    over = {customer: n for customer, n in sent.items() if n > 1}
    assert over == {}, f"{len(over)} customers got more than the cap allows"
    assert len(sent) == CUSTOMERS  # each got exactly one: the cap, not a failure
    assert capped == CUSTOMERS  # and the other journey's send is recorded as capped
