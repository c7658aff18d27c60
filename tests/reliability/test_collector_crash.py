"""Crash safety of the HTTP collector: ``omni-journey serve`` killed with SIGKILL at
random points while a Segment-style client sends it batches, restarted after each kill.

The client behaves as Segment's libraries do: it sends each batch until it gets a 2xx,
retrying the very same body after a refused connection, a dropped one or a 5xx. The
collector acknowledges a batch only once it is committed, and an event's ``messageId``
is its id, so whatever the kills interrupt, the store must end with every event exactly
once and every identified customer once, with their traits.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from omni_journey.store import open_store

pytestmark = pytest.mark.slow

COMMAND = str(Path(sys.executable).parent / "omni-journey")
WRITE_KEY = "wk-collector-crash"
PER_BATCH, CUSTOMERS = 25, 40
START = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``omni-journey serve`` in its own process group, started again after a kill."""

    def __init__(self, home: Path, database_url: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNI_", "PREFECT_"))}
        self.env.update(
            OMNI_HOME=str(home),
            OMNI_DATABASE_URL=database_url,
            OMNI_WRITE_KEYS=WRITE_KEY,
            OMNI_SECRET_KEY="collector-crash-secret",
        )
        self.cwd = home.parent
        self.log = home / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [COMMAND, "serve", "--port", str(self.port)],
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None and self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.base}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "omni-journey serve did not start"
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)


def _batches(count: int, seed: int) -> list[list[dict[str, Any]]]:
    """Identify calls and product events from CUSTOMERS customers, in ``count`` batches."""
    rng = random.Random(seed)
    batches = []
    for b in range(count):
        items: list[dict[str, Any]] = []
        for i in range(PER_BATCH):
            n = b * PER_BATCH + i
            user = f"u-{rng.randrange(CUSTOMERS)}"
            at = (START + timedelta(seconds=n)).isoformat()
            item: dict[str, Any] = {"userId": user, "messageId": f"m-{n}", "timestamp": at}
            if n % 10 == 0:
                item.update(type="identify", traits={"email": f"{user}@example.com"})
            else:
                item.update(type="track", event="Product Viewed", properties={"sku": f"p-{n % 7}"})
            items.append(item)
        batches.append(items)
    return batches


def _send_until_acknowledged(base: str, batch: list[dict[str, Any]], deadline: float) -> int:
    """Send one batch as a Segment client does, retrying until a 2xx; the tries used."""
    tries = 0
    while True:
        tries += 1
        try:
            response = httpx.post(
                f"{base}/v1/batch", json={"batch": batch}, auth=(WRITE_KEY, ""), timeout=10
            )
            if response.status_code < 300:
                body = response.json()
                assert not body.get("rejected"), body  # nothing in the batch is bad
                return tries
            assert response.status_code >= 500, (response.status_code, response.text)
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the collector never acknowledged a batch"
        time.sleep(0.02)


def test_collector_killed_at_random_points_stores_every_event_once(
    store: Engine, tmp_path: Path, kills: int, kill_seed: int
) -> None:
    url = store.url.render_as_string(hide_password=False)
    store.dispose()
    home = tmp_path / "home"
    home.mkdir()
    server = Server(home, url)
    server.start()
    server.wait_ready()
    rng = random.Random(kill_seed)
    batches = _batches(20 + 4 * kills, kill_seed)  # enough traffic for every kill
    sent = threading.Event()
    failures: list[BaseException] = []
    tries: list[int] = []

    def client() -> None:
        try:
            deadline = time.monotonic() + 600
            for batch in batches:
                tries.append(_send_until_acknowledged(server.base, batch, deadline))
        except BaseException as error:  # reported by the test thread
            failures.append(error)
        finally:
            sent.set()

    sender = threading.Thread(target=client, name="segment-client", daemon=True)
    sender.start()
    try:
        while not sent.is_set() and server.kills < kills:
            # a kill at a random point of the stream: mid-request, mid-commit, idle
            if sent.wait(rng.uniform(0.05, 0.6)):
                break
            server.kill()
            server.start()
            server.wait_ready()
        sender.join(timeout=600)
    finally:
        server.stop()
    assert not failures, failures
    assert len(tries) == len(batches)
    assert server.kills >= min(kills, 3), "the client finished before the kills came"

    engine = open_store(url)
    try:
        with engine.connect() as connection:
            events = Counter(
                connection.execute(
                    text("SELECT event_id FROM events WHERE name NOT LIKE 'journey.%'")
                ).scalars()
            )
            customers = connection.execute(
                text("SELECT id, email FROM customers WHERE merged_into IS NULL")
            ).all()
    finally:
        engine.dispose()
    tracked = {item["messageId"] for batch in batches for item in batch if item["type"] == "track"}
    assert {key for key in events if key in tracked} == tracked  # none lost
    assert all(events[key] == 1 for key in tracked)  # none twice
    identified = {item["userId"] for batch in batches for item in batch}
    by_user = Counter(external for external, _ in customers)
    assert set(by_user) >= {u for u in identified}
    assert all(by_user[u] == 1 for u in identified)  # one customer each, never two
    emails = {external: email for external, email in customers}
    for batch in batches:
        for item in batch:
            if item["type"] == "identify":
                assert emails[item["userId"]] == item["traits"]["email"]
    print(f"\ncollector crash safety ({engine.dialect.name}): {server.kills} kills, "
          f"{sum(tries) - len(batches)} retries, {len(tracked)} events stored once")  # fmt: skip
