"""omni_journey.ingest.announce without a Prefect server: counting what a batch
stored, coalescing the collector's batches, doing nothing when no API is configured."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from omni_journey.ingest.announce import (
    IngestedBuffer,
    ingested_counts,
    last_event_seq,
    resource_id,
    segment_resource_id,
)
from omni_journey.ingest.intake import ingest_events
from omni_journey.settings import Settings
from tests.integration.prefect.conftest import ROOT, T0


def _event(event_id: str, name: str) -> dict[str, Any]:
    return {"id": event_id, "name": name, "customer_id": "c-1", "at": T0.isoformat()}


def test_ingested_counts_are_exactly_what_one_call_stored(store: Engine, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    ingest_events(store, [_event("old", "product.viewed")], now=T0, settings=settings)
    with store.connect() as connection:
        before = last_event_seq(connection)
    now = T0 + timedelta(seconds=1)
    batch = [_event(f"v{i}", "product.viewed") for i in range(3)] + [
        _event("a1", "product.added"),
        _event("old", "product.viewed"),  # a duplicate: stored earlier, not counted
    ]
    ingest_events(store, batch, now=now, settings=settings)
    ingest_events(
        store, [_event("later", "product.added")], now=now + timedelta(seconds=1), settings=settings
    )
    with store.connect() as connection:
        counts = ingested_counts(connection, received_at=now, after_seq=before)
        assert last_event_seq(connection) > before
    assert counts == {"product.viewed": 3, "product.added": 1}


def test_resource_ids_name_the_event_or_segment() -> None:
    assert resource_id("product.viewed") == "omni.event.product.viewed"
    assert segment_resource_id("vip") == "omni.segment.vip"


def test_the_buffer_announces_a_lone_batch_at_once_and_coalesces_the_rest() -> None:
    """The first batch after a quiet interval is announced at once (a lone event's
    journey starts without waiting); batches within ``interval`` of an announcement are
    summed into one more, ``interval`` after it; nothing is lost or counted twice."""
    emitted: list[tuple[dict[str, int], str, float]] = []
    first, second = threading.Event(), threading.Event()

    def emit(counts: dict[str, int], *, source: str) -> int:
        emitted.append((counts, source, time.monotonic()))
        (second if first.is_set() else first).set()
        return len(counts)

    buffer = IngestedBuffer(0.5, emit=emit)
    started = time.monotonic()
    buffer.add({"product.viewed": 1})
    assert first.wait(5)
    assert emitted[0][:2] == ({"product.viewed": 1}, "collector")
    assert emitted[0][2] - started < 0.25  # at once, not after the interval
    for _ in range(50):
        buffer.add({"product.viewed": 2})
    buffer.add(["product.added", "product.added", "product.viewed"])
    buffer.add({})
    assert second.wait(5)
    assert emitted[1][:2] == ({"product.viewed": 101, "product.added": 2}, "collector")
    assert emitted[1][2] - emitted[0][2] >= 0.45  # not before the interval is over
    buffer.add({"order.completed": 1})
    assert buffer.close() == 1
    assert emitted[-1][:2] == ({"order.completed": 1}, "collector")
    time.sleep(0.6)
    assert len(emitted) == 3  # the timer was cancelled by close()


def test_without_a_prefect_api_emitting_is_a_quick_no_op(tmp_path: Path) -> None:
    """No PREFECT_API_URL: nothing is sent and no ephemeral server is started."""
    home = tmp_path / "prefect"
    home.mkdir()
    script = (
        "import sys, time\n"
        "from omni_journey.ingest import announce as pe\n"
        "started = time.monotonic()\n"
        "assert pe.api_configured() is False\n"
        "assert pe.emit_ingested({'product.viewed': 3}) == 0\n"
        "assert pe.emit_segment_entries({'vip': 2}) == 0\n"
        "pe.flush()\n"
        "from prefect.server.api.server import SubprocessASGIServer\n"
        "assert not SubprocessASGIServer._instances, 'an ephemeral server was started'\n"
        "print(round(time.monotonic() - started, 2))\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert float(result.stdout.strip()) < 10


def test_the_package_never_imports_prefect_at_import_time() -> None:
    script = (
        "import sys\n"
        "import omni_journey, omni_journey.cli, omni_journey.service.deploy\n"
        "import omni_journey.ingest.announce, omni_journey.service.pipeline\n"
        "from omni_journey.cli import _register\n"
        "_register()\n"
        "loaded = sorted(m for m in sys.modules if m == 'prefect' or m.startswith('prefect.'))\n"
        "assert not loaded, loaded[:5]\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
