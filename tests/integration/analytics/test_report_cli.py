"""``omni-journey report`` as a subprocess on a known history: the page, its charts,
the summary and ``--json``, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

from omni_journey.analytics import write_report
from tests.integration.analytics.conftest import END, KEY, History

BIN = Path(sys.executable).parent / "omni-journey"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _report(history: History, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "OMNI_HOME": str(history.settings.home),
        "OMNI_DATABASE_URL": history.engine.url.render_as_string(hide_password=False),
        "OMNI_PROJECT_DIR": str(history.settings.project_dir),
    }
    return subprocess.run(
        [str(BIN), "report", "--now", END.isoformat(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert data[12:16] == b"IHDR", path
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_report_writes_a_page_with_every_section_and_valid_charts(
    history: History, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    result = _report(history, "--out", str(out))
    assert result.returncode == 0, result.stderr
    page = out / "index.html"
    assert f"report: {page}" in result.stdout
    assert f"{KEY}: entered 30 (holdout {len(history.holdout)})" in result.stdout
    assert "messages sent by channel: email" in result.stdout
    html = page.read_text()
    for section in (
        'id="lift"',
        'id="journeys"',
        f'id="journey-{KEY}"',
        'id="channel-mix"',
        'id="delivery"',
        'id="policy"',
    ):
        assert section in html
    for title in (
        "Conversions and holdout lift",
        "Channel mix over time",
        "Delivery and suppression",
        "Channel policy: value vs baselines",
    ):
        assert title in html
    charts = re.findall(r'<img src="([^"]+)"', html)
    assert {
        "charts/lift.png",
        f"charts/funnel-{KEY}.png",
        "charts/channel-mix.png",
        "charts/delivery.png",
    } <= set(charts)
    for chart in charts:
        width, height = _png_size(out / chart)
        assert width >= 400 and height >= 150
    # counts only: no customer id or address anywhere on the page
    for customer in history.customers:
        assert customer not in html
    assert "@example.com" not in html


def test_report_json_prints_the_figures(history: History, tmp_path: Path) -> None:
    result = _report(history, "--out", str(tmp_path / "r"), "--json", "--journey", KEY)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    assert Path(data["path"]).is_file()
    (journey,) = data["journeys"]
    assert journey["journey"] == KEY
    funnel, lift = journey["funnel"], journey["lift"]
    assert (funnel["entered"], funnel["holdout"]) == (30, len(history.holdout))
    assert [s["step_id"] for s in funnel["steps"]] == ["wait", "remind", "bought", "last"]
    assert funnel["steps"][1]["sent"] == {"email": len(history.reminded)}
    assert lift["treated"]["converted"] == 1 + len(history.treated_buyers)
    assert lift["holdout"]["converted"] == len(history.holdout_buyers)
    assert [row["email"] for row in data["channel_mix"]] == [
        len(history.reminded) - 1,
        len(history.last_chance) - 1,
    ]
    assert data["delivery"][0]["channel"] == "email"
    assert data["policy"] is not None


def test_an_unknown_journey_is_an_error_naming_the_known_ones(
    history: History, tmp_path: Path
) -> None:
    result = _report(history, "--out", str(tmp_path / "r"), "--journey", "nope")
    assert result.returncode == 2
    assert "nope" in result.stderr and KEY in result.stderr


def test_write_report_on_an_empty_store_says_there_is_nothing_yet(
    store: Any, tmp_path: Path
) -> None:
    page = write_report(store, tmp_path / "empty", now=END)
    html = page.read_text()
    assert "No journeys have run yet." in html
    assert "No messages sent in this period." in html
    assert "<img" not in html
