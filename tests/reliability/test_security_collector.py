"""Rate limits on the collector: a token bucket per write key, 429 with Retry-After.

A unit test drives the buckets with a fake clock; the rest runs the collector on a real
uvicorn server over a real SQLite store, and Segment's own Python library is the client
that must slow down on 429 and lose nothing. (Write keys, body size, gzip bombs: see
tests/integration/test_collector.py.)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import segment.analytics as analytics
from sqlalchemy import Engine, func, select

from omni_journey.collector.rate_limits import MAX_BUCKETS, RateLimiter
from omni_journey.collector.refusals import RequestRefused
from omni_journey.settings import Settings
from omni_journey.store.tables import Event
from tests.integration.test_collector import serving

KEY, OTHER = "wk-rate-1", "wk-rate-2"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_the_burst_then_the_rate_per_key() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, 3.0, clock=clock)
    assert [limiter.wait_needed("key:a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.wait_needed("key:a") == pytest.approx(0.5)
    assert limiter.wait_needed("key:b") == 0.0  # another key has its own bucket
    clock.now += 0.5
    assert limiter.wait_needed("key:a") == 0.0
    assert limiter.wait_needed("key:a") == pytest.approx(0.5)  # a refusal takes nothing
    clock.now += 60
    assert [limiter.wait_needed("key:a") for _ in range(4)][-1] > 0  # refilled to the burst only
    with pytest.raises(RequestRefused) as refused:
        limiter.check("key:a")
    assert (refused.value.status, refused.value.reason, refused.value.retry_after) == (
        429, "rate-limited", 1
    )  # fmt: skip
    assert refused.value.response().headers["retry-after"] == "1"


def test_no_limit_at_zero_and_the_buckets_stay_bounded() -> None:
    unlimited = RateLimiter(0, 1)
    assert all(unlimited.wait_needed("key:a") == 0.0 for _ in range(10_000))
    limiter = RateLimiter(1.0, 1.0, clock=Clock())
    for number in range(MAX_BUCKETS + 500):
        limiter.wait_needed(f"ip:10.0.{number // 256}.{number % 256}")
    assert len(limiter._buckets) == MAX_BUCKETS


@pytest.fixture
def limited(sqlite_store: Engine) -> Iterator[str]:
    settings = Settings(
        write_keys=f"{KEY},{OTHER}", collector_rate_limit=1.0, collector_rate_burst=3.0
    )
    with serving(sqlite_store, settings) as url:
        yield url


def _track(number: int) -> dict[str, Any]:
    return {"messageId": f"r-{number}", "event": "Product Viewed", "userId": "c-1",
            "timestamp": "2026-05-01T10:00:00Z"}  # fmt: skip


def _stored(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(Event)).scalar_one())


def test_past_the_burst_a_key_gets_429_with_retry_after_and_nothing_is_stored(
    limited: str, sqlite_store: Engine
) -> None:
    with httpx.Client(base_url=limited, timeout=30) as http:
        answers = [http.post("/v1/track", json=_track(n), auth=(KEY, "")) for n in range(5)]
        other = http.post("/v1/track", json=_track(9), auth=(OTHER, ""))
        in_body = http.post("/v1/track", json={**_track(10), "writeKey": KEY})
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    refused = answers[3]
    assert refused.json()["reason"] == "rate-limited"
    assert int(refused.headers["retry-after"]) >= 1
    assert other.status_code == 200  # each write key has its own bucket
    assert in_body.status_code == 429  # the key in the body counts as the same key
    assert _stored(sqlite_store) == 4


def test_guessing_write_keys_is_slowed_down_per_address(limited: str) -> None:
    with httpx.Client(base_url=limited, timeout=30) as http:
        guesses = [
            http.post("/v1/track", json=_track(n), auth=(f"guess-{n}", "")).status_code
            for n in range(5)
        ]
        body_guess = http.post("/v1/track", json={**_track(7), "writeKey": "guess"}).status_code
        good = http.post("/v1/track", json=_track(8), auth=(KEY, "")).status_code
    assert guesses == [401, 401, 401, 429, 429]
    assert body_guess == 429
    assert good == 200  # the address's bucket is not the key's


def test_segments_library_backs_off_on_429_and_loses_nothing(
    limited: str, sqlite_store: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="omni_journey.collector.app")
    client = analytics.Client(KEY, host=limited, upload_size=1, max_retries=10)
    try:
        for number in range(6):
            client.track(user_id="c-1", event="Product Viewed", message_id=f"seg-{number}",
                         timestamp=None)  # fmt: skip
        started = time.monotonic()
        client.flush()
    finally:
        client.shutdown()
    assert _stored(sqlite_store) == 6
    refusals = [r for r in caplog.records if "429 rate-limited" in r.getMessage()]
    assert refusals, "the limit was reached"
    assert time.monotonic() - started < 30
