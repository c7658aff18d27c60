"""``omni-journey dispatch`` as a subprocess, on the embedded default (file outbox)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from omni_journey.store import open_store
from tests.support.outbox import add_customer, add_message


def test_dispatch_command_sends_due_messages_to_the_file_outbox(tmp_path: Path) -> None:
    home = tmp_path / ".omni"
    engine = open_store(f"sqlite:///{home / 'omni.db'}")
    add_customer(engine, "c-1")
    add_message(engine, "hook-1", "c-1", "webhook",
                decision={"url": "https://hooks.example.com/in", "body": {"order": 1}})  # fmt: skip
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")}
    env["OMNI_HOME"] = str(home)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "omni_journey", "dispatch", *args],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    first = run("--json", "--limit", "10")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["claimed"], report["sent"]) == (1, 1)
    [written] = (home / "outbox" / "webhook").glob("*.json")
    assert json.loads(written.read_text())["body"] == {"order": 1}
    second = run()
    assert second.returncode == 0 and "claimed 0" in second.stdout


def test_dispatch_command_names_a_bad_provider_setting(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")}
    env.update(OMNI_HOME=str(tmp_path), OMNI_PUSH_PROVIDER="fcm")
    result = subprocess.run(
        [sys.executable, "-m", "omni_journey", "dispatch"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "OMNI_FCM_CREDENTIALS_PATH" in result.stdout
