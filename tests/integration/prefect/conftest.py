"""One Prefect API for the whole session, and small projects for the flows to run.

``prefect_test_harness`` starts a real Prefect server (SQLite, its own temporary
database) in a subprocess: 11-15 s on this machine, so exactly once per session.
``PREFECT_HOME`` is a fresh folder created first (the server cannot start without it)
and analytics are off (no network). Each test gets its own omni-journey store and
project through ``OMNI_*`` variables, read by the flows when they start.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import Engine

from omni_journey.ingest.intake import ingest_events, ingest_profiles
from omni_journey.settings import Settings
from omni_journey.store import open_store

ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)

NUDGE = """\
key: quick_nudge
trigger:
  event: product.viewed
steps:
  - id: nudge
    type: send
    message: viewed_product
    channel: email
"""

CART = """\
key: quick_cart
trigger:
  event: product.added
steps:
  - id: settle
    type: delay
    for: 30m
  - id: remind
    type: send
    message: cart_reminder
    channel: email
"""

REACHABLE = """\
key: reachable
match:
  reachable: email
"""

CRM = """\
key: crm_ping
trigger:
  event: order.completed
steps:
  - id: tell_crm
    type: webhook
    url: {url}
    body:
      reason: ordered
"""


def prefect_env(api_url: str, home: Path) -> dict[str, str]:
    """Environment for a subprocess talking to the session's Prefect API."""
    return {
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }


@dataclass(frozen=True)
class PrefectApi:
    url: str
    home: Path

    def env(self) -> dict[str, str]:
        return prefect_env(self.url, self.home)


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectApi]:
    """A real Prefect server for the session (``prefect_test_harness``)."""
    home = tmp_path_factory.mktemp("prefect-home")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_HOME,
        PREFECT_LOGGING_TO_API_BATCH_INTERVAL,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    with (
        temporary_settings(
            updates={
                PREFECT_HOME: home,
                PREFECT_SERVER_ANALYTICS_ENABLED: False,
                PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: 120,
                PREFECT_LOGGING_TO_API_BATCH_INTERVAL: 0.5,
            }
        ),
        prefect_test_harness(server_startup_timeout=120),
    ):
        url = PREFECT_API_URL.value()
        assert url
        yield PrefectApi(url=str(url), home=home)


@dataclass
class Shop:
    """A project folder and a store, wired into ``OMNI_*`` for the flows."""

    root: Path
    home: Path
    engine: Engine
    settings: Settings

    def profiles(self, customers: int, *, prefix: str = "c") -> list[str]:
        ids = [f"{prefix}-{i}" for i in range(customers)]
        records = [
            {
                "customer_id": c,
                "email": f"{c}@example.com",
                "timezone": "UTC",
                "consent": {"email": True, "sms": False, "push": False},
                "attributes": {"first_name": c.upper()},
            }
            for c in ids
        ]
        result = ingest_profiles(self.engine, records, now=T0, settings=self.settings)
        assert result.rejected == []
        return ids

    def events(self, name: str, customers: list[str], *, at: datetime = T0, **props: Any) -> None:
        records = [
            {
                "id": f"{name}-{c}-{at.timestamp()}",
                "name": name,
                "customer_id": c,
                "at": at.isoformat(),
                "properties": {"sku": "SERUM-30", "product_name": "Serum", **props},
            }
            for c in customers
        ]
        result = ingest_events(self.engine, records, now=at, settings=self.settings)
        assert result.rejected == []

    def outbox_files(self, channel: str = "email") -> list[Path]:
        folder = self.home / "outbox" / channel
        return sorted(folder.rglob("*.*")) if folder.exists() else []


@pytest.fixture
def make_shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Shop]]:
    """``make_shop(journeys, segments, **settings)``: a project with those journey and
    segment files (and the repository's templates) and an empty SQLite store, set as
    ``OMNI_*``."""
    engines: list[Engine] = []

    def make(
        journeys: dict[str, str], segments: dict[str, str] | None = None, **settings: str
    ) -> Shop:
        root = tmp_path / "project"
        (root / "journeys").mkdir(parents=True)
        (root / "segments").mkdir()
        shutil.copytree(ROOT / "templates", root / "templates")
        for key, text in journeys.items():
            (root / "journeys" / f"{key}.yaml").write_text(text)
        for key, text in (segments or {}).items():
            (root / "segments" / f"{key}.yaml").write_text(text)
        home = tmp_path / "home"
        env = {
            "OMNI_HOME": str(home),
            "OMNI_PROJECT_DIR": str(root),
            "OMNI_DATABASE_URL": f"sqlite:///{home / 'omni.db'}",
            **{f"OMNI_{k.upper()}": v for k, v in settings.items()},
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        for name in list(os.environ):
            if name.startswith("OMNI_") and name not in env:
                monkeypatch.delenv(name)
        engine = open_store(env["OMNI_DATABASE_URL"])
        engines.append(engine)
        return Shop(root, home, engine, Settings())

    yield make
    for engine in engines:
        engine.dispose()


class _Failing(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(503)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def failing_webhook() -> Iterator[str]:
    """The URL of an endpoint that answers every POST with 503."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def wait_for(check: Callable[[], Any], *, timeout: float, interval: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy (returned) or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(interval)


def task_runs_of(flow_run_id: UUID) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        return list(
            client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])), limit=200
            )
        )


def stop_group(process: subprocess.Popen[Any], *, timeout: float = 30) -> None:
    """Stop a process started with ``start_new_session=True`` and everything it started
    (a worker's flow runs, a server's children): SIGTERM, then SIGKILL if it lingers."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:  # pragma: no cover - a stuck process
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def ingested_events(resource_id: str) -> list[Any]:
    """The ``omni.events.ingested`` Prefect events about ``resource_id`` so far."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    from omni_journey.ingest.announce import INGESTED_EVENT

    with get_client(sync_client=True) as client:
        page = client.read_events(
            filter=EventFilter(
                event=EventNameFilter(name=[INGESTED_EVENT]),
                resource=EventResourceFilter(id=[resource_id]),
            ),
            limit=50,
        )
    return list(page.events)
