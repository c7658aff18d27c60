"""Charts are valid PNGs drawn without pyplot; the page has every section, escaped."""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from pathlib import Path

from omni_journey.analytics import Funnel, PolicyValue, render_report
from omni_journey.analytics.charts import (
    delivery_chart,
    funnel_chart,
    lift_chart,
    mix_chart,
    policy_chart,
)
from omni_journey.analytics.lift import judge
from tests.unit.analytics.support import NOW, funnel, report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_every_chart_is_a_png_of_a_readable_size(tmp_path: Path) -> None:
    sample = report()
    drawn = [
        funnel_chart(funnel(), tmp_path / "funnel.png"),
        lift_chart([f.lift for f in sample.journeys], tmp_path / "lift.png"),
        mix_chart(sample.mix, tmp_path / "mix.png"),
        delivery_chart(sample.delivery, tmp_path / "delivery.png"),
        policy_chart(sample.policy, tmp_path / "policy.png"),  # type: ignore[arg-type]
    ]
    for path in drawn:
        assert path is not None
        width, height = _png_size(path)
        assert 800 <= width <= 1200 and 250 <= height <= 1000, (path, width, height)


def test_nothing_to_draw_draws_nothing(tmp_path: Path) -> None:
    empty = Funnel("j", None, None, NOW, 0, 0, {}, 0, 0, 0, 0, {}, [])
    assert funnel_chart(empty, tmp_path / "f.png") is None
    assert lift_chart([judge("j", 0, 0, 0, 0)], tmp_path / "l.png") is None
    assert mix_chart([], tmp_path / "m.png") is None
    assert delivery_chart([], tmp_path / "d.png") is None
    nothing = PolicyValue(None, None, 0, 0, {}, None, [], 25.0, {})
    assert policy_chart(nothing, tmp_path / "p.png") is None
    assert list(tmp_path.iterdir()) == []


def test_importing_is_free_and_drawing_leaves_no_global_state(tmp_path: Path) -> None:
    """No matplotlib at import; charts never touch pyplot (its global figure manager)."""
    code = f"""
import sys
import omni_journey.analytics
assert "matplotlib" not in sys.modules, "imported at import time"
from pathlib import Path
from tests.unit.analytics.support import report
from omni_journey.analytics import render_report
render_report(report(), Path({str(tmp_path)!r}))
assert "matplotlib.pyplot" not in sys.modules
print("ok")
"""
    root = Path(__file__).resolve().parents[3]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=False
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_page_has_every_section_and_escapes_what_it_shows(tmp_path: Path) -> None:
    page = render_report(report(), tmp_path / "out")
    assert page == tmp_path / "out" / "index.html"
    html = page.read_text()
    assert html.startswith("<!doctype html>")
    for anchor in (
        "lift",
        "journeys",
        "journey-cart",
        "journey-welcome",
        "channel-mix",
        "delivery",
        "policy",
    ):
        assert f'id="{anchor}"' in html
    assert "Cart &lt;abandonment&gt;" in html and "Cart <abandonment>" not in html
    assert "No one has entered this journey in this period." in html  # welcome
    assert "Not entered (refused at entry): already_active 7." in html
    assert "most logged decisions were deterministic" in html
    assert "<script" not in html and "http" not in html  # self-contained
    images = re.findall(r'<img src="([^"]+)"', html)
    assert images == [
        "charts/lift.png",
        "charts/funnel-cart.png",
        "charts/channel-mix.png",
        "charts/delivery.png",
        "charts/policy.png",
    ]
    for image in images:
        _png_size(tmp_path / "out" / image)


def test_page_without_policy_or_data_explains_itself(tmp_path: Path) -> None:
    html = render_report(report(policy=False), tmp_path).read_text()
    assert "Not evaluated in this report." in html
