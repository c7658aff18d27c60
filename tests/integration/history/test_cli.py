"""``omni-journey customers show`` and ``omni-journey explain`` as an operator runs
them (subprocesses) on a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.engine.conftest import Shop
from tests.integration.history.test_explain import PROMO, promo_story

ROOT = Path(__file__).resolve().parents[3]
COMMAND = str(Path(sys.executable).parent / "omni-journey")


def _cli(shop: Shop, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")}
    env.update(
        OMNI_HOME=str(shop.settings.home),
        OMNI_PROJECT_DIR=str(ROOT),
        OMNI_DATABASE_URL=shop.engine.url.render_as_string(hide_password=False),
        OMNI_DEFAULT_REGION="DE",
        COLUMNS="200",
    )
    return subprocess.run([COMMAND, *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_show_and_explain_through_the_command(shop: Shop) -> None:
    promo_story(shop)  # skipped, deferred, sent, converted, refused

    shown = _json(_cli(shop, "customers", "show", "0151 12345678", "--json"))
    assert shown["customer"]["customer_id"] == "c-1"
    assert {"customer", "identities", "consent", "timeline"} <= set(shown)
    for item in shown["timeline"]:
        assert {"at", "kind", "name", "channel"} <= set(item)
        assert item["kind"] in ("event", "message", "journey", "consent")
    assert ("message", "cart_reminder", "email") in {
        (i["kind"], i["name"], i["channel"]) for i in shown["timeline"]
    }
    text = _cli(shop, "customers", "show", "c-1@example.com", "--limit", "3")
    assert text.returncode == 0, text.stderr
    assert "c-1" in text.stdout and "timeline" in text.stdout and "more: --offset 3" in text.stdout

    explained = _json(_cli(shop, "explain", "c-1", "--journey", PROMO.key, "--json"))
    assert (explained["customer_id"], explained["journey"]) == ("c-1", "promo")
    outcomes = [(d["step"], d["outcome"], d["reason"]) for d in explained["decisions"]]
    assert outcomes[0] == (None, "entered", None)
    assert ("text", "skipped", "no_consent") in outcomes
    assert any(o == "deferred" and s == "mail" for s, o, _ in outcomes)
    assert ("mail", "sent", "email") in outcomes
    assert {"at", "step", "outcome", "reason"} <= set(explained["decisions"][0])

    outside = _json(_cli(shop, "explain", "c-1", "--journey", "welcome_series", "--json"))
    assert outside["decisions"] == []
    assert outside["not_entered"]["reason"] == "no_trigger_event"
    assert outside["not_entered"]["inputs"]["trigger"] == "account.created"

    missing = _cli(shop, "customers", "show", "nobody@example.com")
    assert missing.returncode == 1 and "no customer matches" in missing.stderr
    assert "nobody@example.com" not in missing.stderr + missing.stdout
