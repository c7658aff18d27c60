"""``omni-journey customers show / export / erase`` as an operator runs them
(subprocesses) on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.integration.engine.conftest import Shop
from tests.integration.privacy.story import EMAIL, PHONE, found_in_files, found_in_store, tell

ROOT = Path(__file__).resolve().parents[3]
COMMAND = str(Path(sys.executable).parent / "omni-journey")


def _cli(shop: Shop, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")}
    env.update(
        OMNI_HOME=str(shop.settings.home),
        OMNI_PROJECT_DIR=str(ROOT),
        OMNI_DATABASE_URL=shop.engine.url.render_as_string(hide_password=False),
        OMNI_DEFAULT_REGION="DE",
        OMNI_SECRET_KEY="privacy-test-secret-" + "x" * 24,
        COLUMNS="200",
    )
    return subprocess.run([COMMAND, *args], env=env, capture_output=True, text=True,
                          input=stdin, timeout=120, check=False)  # fmt: skip


def test_show_export_and_erase_through_the_command(shop: Shop, tmp_path: Path) -> None:
    tell(shop)
    shown = _cli(shop, "customers", "show", "0151 12345678", "--json")
    assert shown.returncode == 0, shown.stderr
    sms = json.loads(shown.stdout)["consent"]["sms"]
    assert [(c["value"], c["source"]) for c in sms["history"]] == [
        (True, "profile"),
        (False, "sms_keyword"),
    ]
    assert all(c["at"] for c in sms["history"])

    previewed = _cli(shop, "preview", "cart_reminder", "--customer", "ana-crm-7")
    assert previewed.returncode == 0, previewed.stdout + previewed.stderr
    assert {f.split("/")[0] for f, _ in found_in_files(shop.settings.home)} >= {"previews"}

    out = tmp_path / "ana.json"
    exported = _cli(shop, "customers", "export", EMAIL, "--output", str(out))
    assert exported.returncode == 0, exported.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    document = json.loads(out.read_text())
    assert document["profile"]["phone"] == PHONE and document["messages"][0]["rendered"]

    refused = _cli(shop, "customers", "erase", EMAIL, stdin="n\n")
    assert refused.returncode == 1 and found_in_store(shop.engine)

    erased = _cli(shop, "customers", "erase", EMAIL, "--yes", "--json")
    assert erased.returncode == 0, erased.stderr
    result = json.loads(erased.stdout)
    assert result["erased"] is True and result["counts"]["customers"] == 2
    assert result["counts"]["previews"] >= 1
    assert found_in_store(shop.engine) == [] and found_in_files(shop.settings.home) == []

    again = _cli(shop, "customers", "erase", EMAIL, "--yes")
    assert again.returncode == 0 and "nothing to erase" in again.stdout
    gone = _cli(shop, "customers", "export", EMAIL)
    assert gone.returncode == 1 and "no customer matches" in gone.stderr
