"""Screenshots of the Prefect UI watching omni-journey's flows (docs/operations.md).

    .venv/bin/python scripts/prefect_ui_screenshots.py [--out docs/images] [--hours 4]
    .venv/bin/python scripts/prefect_ui_screenshots.py --no-browser   # server + workload only

1. ``prefect server start`` on 127.0.0.1 (a free port, the UI on, its own temporary
   ``PREFECT_HOME``, analytics off);
2. a throw-away demo store (:mod:`omni_journey.lab.demo`: a seeded shop of 1000
   customers with 180 days of history) and the repository's journeys, segments and
   templates, wired into the flows through ``OMNI_*``;
3. a few simulated hours through the real flows, as the deployments would run them:
   each hour the shop's new events are imported (``ingest``), every journey is advanced
   (``advance`` per journey, as its trigger would start it), the outbox is sent
   (``dispatch``, file outbox) and the shop answers what it received; segments and
   purchase cycles run at the start, the channel model is trained at the end;
4. headless Chromium (Debian package ``chromium-headless-shell``) driven over the
   DevTools protocol: each page is captured once the data is on screen, not a spinner;
5. the server is stopped (its process group), whatever happened.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

ROOT = Path(__file__).resolve().parent.parent
PREFECT = Path(sys.executable).parent / "prefect"
CHROMIUM_NAMES = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")
WINDOW = (1440, 900)
FIRST_TICK = timedelta(hours=9)  # the demo shop's present starts at midnight UTC
PREFERRED_JOURNEY = "browse_abandonment"  # shown when it did something, else the busiest


def say(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


# --- the Prefect server ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def prefect_server(home: Path, *, ui: bool = True, timeout: float = 120.0) -> Iterator[str]:
    """``prefect server start`` on a free port of 127.0.0.1 with ``home`` as its
    ``PREFECT_HOME``; yields the API URL once ``/api/health`` answers, and stops the
    server's whole process group on the way out."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_UI_ENABLED": "true" if ui else "false",
        "PREFECT_UI_API_URL": api_url,
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    }
    env.pop("PREFECT_API_URL", None)
    log_path = home / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout
        while not _healthy(api_url):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"prefect server start did not come up:\n{tail}")
            time.sleep(0.5)
        yield api_url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --- the workload ---------------------------------------------------------------------------


@dataclass
class Workload:
    """What ran: flow run ids by flow run name, and the ``advance`` run to show (the one
    that did most: entered customers and queued messages)."""

    runs: dict[str, UUID] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    showcase: UUID | None = None
    showcase_name: str = ""
    showcase_journey: str = ""
    ended: datetime | None = None
    counts: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set ``values`` (and drop other ``OMNI_*`` variables) for the block."""
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith("OMNI_")]:
        del os.environ[name]
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _sent_since(engine: Any, since: datetime) -> list[Any]:
    """Messages the dispatcher sent after ``since``, for the shop to answer."""
    from sqlalchemy import and_, select

    from omni_journey.lab.shop import SentMessage
    from omni_journey.store.core import MESSAGES

    m = MESSAGES.c
    with engine.connect() as connection:
        rows = connection.execute(
            select(m.id, m.customer_id, m.channel, m.message_key, m.sent_at).where(
                and_(m.status == "sent", m.channel != "webhook", m.sent_at > since)
            )
        ).all()
    return [SentMessage(r.id, r.customer_id, r.channel, r.message_key, r.sent_at) for r in rows]


def _write_jsonl(path: Path, records: Sequence[Mapping[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, default=str) + "\n")
    return path


def run_workload(
    api_url: str,
    prefect_home: Path,
    work_dir: Path,
    *,
    hours: int = 4,
    customers: int = 1000,
    seed: int = 7,
) -> Workload:
    """Run ``hours`` simulated hours of the demo shop through the real flows against
    the Prefect API at ``api_url``; the store and outbox live under ``work_dir``."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_HOME,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        temporary_settings,
    )

    if str(ROOT) not in sys.path:  # flows/ is a top-level folder of the repository
        sys.path.insert(0, str(ROOT))
    from flows.advance import advance
    from flows.dispatch import dispatch_outbox
    from flows.ingest import ingest
    from flows.purchase_cycles import purchase_cycles
    from flows.segments import segments_flow
    from flows.train import train_channel_model
    from omni_journey.lab.demo import DemoConfig, demo_settings, prepare_demo
    from omni_journey.settings import Settings
    from omni_journey.spec.project import load_project

    with _environment({}):  # the demo's settings, not the caller's OMNI_* variables
        settings = demo_settings(Settings(home=work_dir, project_dir=ROOT))
    say(f"demo store: {customers} customers with history ...")
    engine, shop, _summary, signups = prepare_demo(
        settings, DemoConfig(customers=customers, seed=seed)
    )
    journeys = sorted(k for k, spec in load_project(ROOT).journeys.items() if spec.enabled)
    env = {
        "OMNI_HOME": str(settings.home),
        "OMNI_DATABASE_URL": settings.resolved_database_url,
        "OMNI_PROJECT_DIR": str(ROOT),
        **{f"OMNI_{c.upper()}_PROVIDER": "file" for c in ("email", "sms", "push", "whatsapp")},
        "OMNI_WEBHOOK_PROVIDER": "file",
    }
    inbox = work_dir / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    workload = Workload()
    best: tuple[bool, bool, int] = (False, False, -1)

    def record(state: Any, label: str) -> Any:
        run_id = state.state_details.flow_run_id
        name = _run_name(run_id) or label
        workload.runs[name] = run_id
        if not state.is_completed():
            workload.failed[name] = state.message or state.name
            say(f"  {name}: {state.name}: {state.message}")
            return None
        say(f"  {name}")
        return state.result()

    updates = {
        PREFECT_API_URL: api_url,
        PREFECT_HOME: prefect_home,
        PREFECT_SERVER_ANALYTICS_ENABLED: False,
    }
    try:
        with temporary_settings(updates=updates), _environment(env):
            pending = sorted(signups, key=lambda e: str(e["at"]))
            answers: list[dict[str, Any]] = []
            previous = shop.start
            for hour in range(hours):
                now = shop.start + FIRST_TICK + timedelta(hours=hour)
                say(f"{now:%Y-%m-%d %H:%M} UTC")
                due = [e for e in pending if datetime.fromisoformat(str(e["at"])) <= now]
                pending = pending[len(due) :]
                batch = _write_jsonl(
                    inbox / f"events-{now:%Y%m%dT%H%M}.jsonl",
                    [*answers, *shop.advance(now), *due],
                )
                record(ingest(str(batch), now=now, return_state=True), "ingest")
                if hour == 0:
                    record(segments_flow(now=now, return_state=True), "segments")
                    record(purchase_cycles(now=now, return_state=True), "purchase-cycles")
                for key in journeys:
                    result = record(advance(journey=key, now=now, return_state=True), key)
                    counts = (result or {}).get(key, {})
                    entered, queued = counts.get("entered", 0), counts.get("queued", 0)
                    score = (entered > 0 and queued > 0, key == PREFERRED_JOURNEY, entered + queued)
                    if result is not None and score > best:
                        best = score
                        workload.showcase_name = list(workload.runs)[-1]
                        workload.showcase = workload.runs[workload.showcase_name]
                        workload.showcase_journey = key
                sent = record(dispatch_outbox(now=now, return_state=True), "dispatch")
                if sent:
                    workload.counts["sent"] = workload.counts.get("sent", 0) + sent["sent"]
                delivered = _sent_since(engine, previous)
                previous = max([previous, *(s.at for s in delivered)])
                answers = shop.respond(delivered)
                workload.ended = now
            if workload.ended is not None:
                record(train_channel_model(now=workload.ended, return_state=True), "train")
            drain_prefect_workers()
    finally:
        engine.dispose()
    return workload


def drain_prefect_workers(timeout: float = 30.0) -> None:
    """Send the logs and events still queued in this process while the server is up
    (otherwise they are retried against a stopped server for a minute at exit)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=timeout, at_exit=False)


def _run_name(run_id: UUID | None) -> str | None:
    if run_id is None:
        return None
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return str(client.read_flow_run(run_id).name)


# --- headless Chromium over the DevTools protocol ------------------------------------------


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


class Browser:
    """One headless Chromium page, driven over the DevTools protocol (websockets)."""

    def __init__(self, executable: str, profile: Path) -> None:
        self.profile = profile
        self.process = subprocess.Popen(
            [
                executable,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                f"--window-size={WINDOW[0]},{WINDOW[1]}",
                "about:blank",
            ],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._next_id = 0
        self.socket: Any = None
        try:
            self.socket = self._connect()
            self.resize(*WINDOW)
            self.call("Page.enable")
            self.call("Runtime.enable")
        except BaseException:
            self.close()
            raise

    def _connect(self) -> Any:
        from websockets.sync.client import connect

        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("headless Chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
            pages = [t for t in json.load(r) if t.get("type") == "page"]
        return connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=10)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        ident = self._next_id
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def resize(self, width: int, height: int) -> None:
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def text(self) -> str:
        found = self.call(
            "Runtime.evaluate", expression="document.body.innerText", returnByValue=True
        )
        return str(found.get("result", {}).get("value") or "")

    def evaluate(self, expression: str) -> Any:
        found = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return found.get("result", {}).get("value")

    def show(self, url: str, expect: Sequence[str], *, timeout: float = 60.0) -> str:
        """Open ``url`` and wait until every string of ``expect`` is on the page (the
        data, not a spinner) and the page has stopped changing; returns its text."""
        self.call("Page.navigate", url=url)
        text = self.wait_for(expect, timeout=timeout, what=url)
        for _ in range(10):  # late requests, transitions and charts
            time.sleep(1.0)
            again = self.text()
            if again == text:
                break
            text = again
        return text

    def wait_for(self, expect: Sequence[str], *, timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.text()
            if all(e in text for e in expect):
                return text
            time.sleep(0.5)
        missing = [e for e in expect if e not in text]
        raise RuntimeError(f"{what}: never showed {missing}; the page said:\n{text[:1500]}")

    def screenshot(self, path: Path, *, colours: int = 256) -> Path:
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_small_png(data, colours))
        return path

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.socket is not None:
                self.socket.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _small_png(data: bytes, colours: int) -> bytes:
    """The screenshot as a palette PNG (a UI has few colours): a fraction of the size."""
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        return data
    with Image.open(io.BytesIO(data)) as image:
        small = image.convert("RGB").quantize(colors=colours, method=Image.Quantize.MEDIANCUT)
        out = io.BytesIO()
        small.save(out, format="PNG", optimize=True)
    return out.getvalue()


def run_artifacts(api_url: str, flow_run_id: UUID) -> dict[str, str]:
    """``{type: artifact id}`` of the artifacts a flow run published (newest per type)."""
    body = {"artifacts": {"flow_run_id": {"any_": [str(flow_run_id)]}}, "sort": "CREATED_DESC"}
    request = urllib.request.Request(  # noqa: S310 - the local server's http URL
        f"{api_url}/artifacts/filter",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        found: dict[str, str] = {}
        for artifact in json.load(response):
            found.setdefault(str(artifact["type"]), str(artifact["id"]))
    return found


def take_screenshots(api_url: str, workload: Workload, out_dir: Path, chromium: str) -> list[Path]:
    """The runs list, the showcase ``advance`` run's artifacts tab, and its table and
    markdown artifacts. The Prefect 3.8 server opens the V2 UI under ``/v2/``."""
    if workload.showcase is None:
        raise RuntimeError("no advance run completed: nothing to show")
    ui = api_url.removesuffix("/api") + "/v2"
    artifacts = run_artifacts(api_url, workload.showcase)
    key = "advance-" + workload.showcase_journey.replace("_", "-")
    pages: list[tuple[str, str, list[str], tuple[int, int]]] = [
        (
            "prefect-ui-runs.png",
            "/runs?range=past-hour",
            ["advance-", "dispatch-", "ingest-events-", "segments-all-", "journey:"],
            (WINDOW[0], 1640),
        ),
        (
            "prefect-ui-advance-run.png",
            f"/runs/flow-run/{workload.showcase}?tab=Artifacts",
            [workload.showcase_name, f"{key}-summary", "TABLE"],
            WINDOW,
        ),
        (
            "prefect-ui-artifact-table.png",
            f"/artifacts/artifact/{artifacts['table']}",
            [key, "skipped_by_reason", "(journey)", workload.showcase_name],
            (1920, WINDOW[1]),
        ),
        (
            "prefect-ui-artifact-summary.png",
            f"/artifacts/artifact/{artifacts['markdown']}",
            ["Journey pass at", workload.showcase_journey],
            WINDOW,
        ),
    ]
    shots: list[Path] = []
    with tempfile.TemporaryDirectory(
        prefix="omni-chromium-", ignore_cleanup_errors=True
    ) as profile:
        browser = Browser(chromium, Path(profile))
        try:
            for name, path, expect, size in pages:
                browser.resize(*size)
                browser.show(ui + path, expect)
                shots.append(browser.screenshot(out_dir / name))
        finally:
            browser.close()
    return shots


# --- main ---------------------------------------------------------------------------------


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--hours", type=int, default=4, help="simulated hours (default 4)")
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument(
        "--no-browser", action="store_true", help="run the server and the workload only"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the server up after the screenshots (Ctrl-C)"
    )
    args = parser.parse_args(argv)
    chromium = None if args.no_browser else find_chromium()
    if not args.no_browser and chromium is None:
        say("no headless Chromium: apt-get install -y chromium-headless-shell (or --no-browser)")
        return 2
    os.environ.setdefault("DO_NOT_TRACK", "1")
    signal.signal(signal.SIGTERM, _stop)  # so the server is stopped on kill too
    with tempfile.TemporaryDirectory(prefix="omni-prefect-ui-") as tmp:
        work = Path(tmp)
        with prefect_server(work / "prefect-home") as api_url:
            say(f"Prefect server: {api_url.removesuffix('/api')}")
            workload = run_workload(
                api_url,
                work / "prefect-home",
                work / "omni",
                hours=args.hours,
                customers=args.customers,
            )
            say(
                f"{len(workload.runs)} flow runs, {len(workload.failed)} failed, "
                f"{workload.counts.get('sent', 0)} messages sent"
            )
            if chromium is not None:
                for path in take_screenshots(api_url, workload, args.out, chromium):
                    say(f"{path} ({path.stat().st_size // 1024} KB)")
            if args.keep:
                say("serving until Ctrl-C")
                with contextlib.suppress(KeyboardInterrupt):
                    while True:
                        time.sleep(1)
    return 1 if workload.failed else 0


if __name__ == "__main__":
    sys.exit(main())
