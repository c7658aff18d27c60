"""The Prefect-only peer of ``bench/latency.py``: a flow run per event doing trivial
work (it writes a marker file named after the event's resource, holding the time)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from prefect import flow


@flow(name="latency-peer")
def peer(key: str) -> None:
    """Record that the run for ``key`` did its work, and when."""
    folder = Path(os.environ["BENCH_PEER_DIR"])
    (folder / key).write_text(repr(time.time()))
