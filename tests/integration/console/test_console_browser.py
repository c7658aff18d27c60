"""The console in a real browser: headless Chromium against ``omni-journey serve`` (a
subprocess, on a free port, over a real SQLite store).

Checks that the pages render (the elements are in the DOM Chromium built), that the
markup in a customer's values stayed text (no ``<script>`` or ``<img>`` element, the
title a script would have changed unchanged), and that without the token the browser
gets nothing. With ``OMNI_SCREENSHOTS=1`` it also writes the screenshots the guides
show, ``docs/images/console-*.png``.

Needs ``/usr/bin/chromium`` (Debian: ``apt-get install chromium``); skipped without it.
Nothing is fetched from the internet: the pages have no external source, and Chromium
runs with its background networking off.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from omni_journey.settings import Settings
from omni_journey.store import open_store
from tests.integration.console.conftest import EVIL, TOKEN, console_story, make_project
from tests.integration.engine.conftest import Shop

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[3]
COMMAND = str(Path(sys.executable).parent / "omni-journey")
IMAGES = ROOT / "docs" / "images"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason="headless Chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``omni-journey serve`` over the console story (one server for this module's
    tests: they only read); its base URL."""
    tmp_path = tmp_path_factory.mktemp("console-browser")
    store = open_store(f"sqlite:///{tmp_path / 'omni.db'}")
    shop = Shop(store, Settings(home=tmp_path / "home"))
    project = make_project(tmp_path / "project")
    console_story(shop, project)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")}
    env.update(
        OMNI_HOME=str(tmp_path / "home"),
        OMNI_DATABASE_URL=store.url.render_as_string(hide_password=False),
        OMNI_PROJECT_DIR=str(project),
        OMNI_CONSOLE_TOKEN=TOKEN,
        OMNI_DEFAULT_REGION="DE",
    )
    server = subprocess.Popen(
        [COMMAND, "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "omni-journey serve did not start"
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stderr:
            server.stderr.close()
        store.dispose()


def _chromium(tmp_path: Path, *args: str) -> str:
    profile = tmp_path / "chromium-profile"
    result = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _signed_in(base: str, path: str, password: str = TOKEN) -> str:
    """The address with Basic credentials in it (a top-level navigation only: the
    console's pages load nothing else)."""
    return base.replace("http://", f"http://ops:{quote(password, safe='')}@") + path


def test_the_console_pages_render_in_chromium(served: str, tmp_path: Path) -> None:
    evil = f"/console/customers/{quote(EVIL, safe='')}"
    pages = {
        "/console/": ['id="journeys"', 'name="q"', "console_demo"],
        "/console/customers/c-3": ['id="timeline"', "order.completed", 'class="tag message"'],
        evil: ['id="attributes"', "&lt;script&gt;document.title="],
        f"{evil}/explain/console_demo": ['id="decisions"', "sent"],
        "/console/journeys/console_demo": ["<svg", '<g id="step-remind">', "quiet 50%"],
    }
    for path, expected in pages.items():
        dom = _chromium(tmp_path, "--dump-dom", _signed_in(served, path))
        for piece in expected:
            assert piece in dom, (path, piece)
        # markup in customer values stayed text: no element was made of it, and the
        # script that would have renamed the page never ran
        assert "<script" not in dom and "<img" not in dom, path
        assert "pwned" not in dom.split("</title>")[0], path


def test_without_the_token_the_browser_gets_nothing(served: str, tmp_path: Path) -> None:
    for password in ("", "not-the-token-0123456789"):
        dom = _chromium(
            tmp_path, "--dump-dom", _signed_in(served, "/console/customers/c-1", password)
        )
        assert "c-1" not in dom and "example.com" not in dom and "timeline" not in dom


SHOTS = {
    "console-search": ("/console/?q=nobody%40example.com", "1000,640"),
    "console-timeline": ("/console/customers/c-3", "1100,1500"),
    "console-explain": ("/console/customers/c-2/explain/console_demo", "1100,540"),
    "console-journey": ("/console/journeys/console_demo", "1000,1420"),
    "console-journey-phone": ("/console/journeys/console_demo", "390,1100"),
}


@pytest.mark.skipif(os.environ.get("OMNI_SCREENSHOTS") != "1", reason="OMNI_SCREENSHOTS=1 not set")
def test_screenshots_for_the_guides(served: str, tmp_path: Path) -> None:
    for name, (path, size) in SHOTS.items():
        target = IMAGES / f"{name}.png"
        _chromium(
            tmp_path, f"--window-size={size}", f"--screenshot={target}", _signed_in(served, path)
        )
        assert target.stat().st_size > 10_000, name
