"""The HTTP collector on a real uvicorn server, fed by Segment's own Python library,
storing into real SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import segment.analytics as analytics
import uvicorn
from segment.analytics import request as segment_request
from sqlalchemy import Engine, func, select, text

from omni_journey.collector.app import create_app
from omni_journey.settings import Settings
from omni_journey.store import create_store_engine
from omni_journey.store.tables import Customer, Event, Identity

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
WRITE_KEY = "wk-test-1"
LIMIT = 4096


@contextmanager
def serving(engine: Engine, settings: Settings, **app_options: Any) -> Iterator[str]:
    """The collector on a real uvicorn server in a thread, on a free port; its base URL.
    ``app_options`` go to ``create_app`` (an SNS verifier, a subscription confirmer)."""
    config = uvicorn.Config(
        create_app(engine, settings, lambda: NOW, **app_options),
        host="127.0.0.1",
        port=0,
        ws="none",
        lifespan="off",
        log_config=None,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="collector", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive(), "the collector did not start"
        assert time.monotonic() < deadline, "the collector did not start in time"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        assert not thread.is_alive(), "the collector did not stop"


def _settings(**overrides: Any) -> Settings:
    return Settings(
        **{"write_keys": f"{WRITE_KEY},wk-test-2", "max_body_bytes": LIMIT, **overrides}
    )


@dataclass
class Collector:
    url: str
    engine: Engine
    http: httpx.Client

    def post(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("auth", (WRITE_KEY, ""))
        return self.http.post(f"{self.url}{path}", json=body, **kwargs)

    def events(self) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(select(Event.__table__).order_by(text("seq"))))  # type: ignore[call-overload]

    def count(self, table: Any) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.fixture
def collector(store: Engine) -> Iterator[Collector]:
    with serving(store, _settings()) as url, httpx.Client(timeout=30) as http:
        yield Collector(url, store, http)


@pytest.fixture
def segment(collector: Collector) -> Iterator[Any]:
    """Segment's official library, pointed at the collector, sending synchronously."""
    saved = (analytics.write_key, analytics.host, analytics.sync_mode, analytics.gzip)
    analytics.write_key, analytics.host, analytics.sync_mode = WRITE_KEY, collector.url, True
    analytics.default_client = None
    yield analytics
    analytics.write_key, analytics.host, analytics.sync_mode, analytics.gzip = saved
    analytics.default_client = None
    segment_request._session.close()  # its pooled connections to the stopped server


def _track(message_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": message_id,
        "event": "Product Viewed",
        "userId": "c-1",
        "timestamp": "2026-05-01T10:00:00Z",
        "properties": {"product_id": "SERUM-30", "category": "skincare", "price": 24.0},
        **fields,
    }


# --- Segment's library, end to end ------------------------------------------------


@pytest.mark.parametrize("compress", [False, True], ids=["json", "gzip"])
def test_segment_library_anonymous_visit_then_identify_merges_into_one_customer(
    segment: Any, collector: Collector, compress: bool
) -> None:
    segment.gzip = compress
    viewed = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    segment.page(anonymous_id="anon-1", name="Home", properties={"path": "/"}, timestamp=viewed)
    segment.track(
        anonymous_id="anon-1",
        event="Product Viewed",
        properties={"product_id": "SERUM-30", "category": "skincare", "price": 24.0},
        timestamp=viewed,
        message_id="view-1",
    )
    segment.identify(
        user_id="c-42",
        anonymous_id="anon-1",
        traits={"email": "ana@example.com", "firstName": "Ana", "tier": "gold"},
        context={"timezone": "Europe/Berlin", "locale": "de-DE"},
    )
    segment.track(
        user_id="c-42",
        event="Order Completed",
        properties={
            "order_id": "o-1",
            "revenue": 24.0,
            "currency": "EUR",
            "products": [{"product_id": "SERUM-30", "category": "skincare", "price": 24.0}],
        },
        message_id="order-1",
    )

    events = collector.events()
    assert [e.name for e in events] == ["page.viewed", "product.viewed", "order.completed"]
    assert {e.customer_id for e in events} == {"c-42"}
    view = events[1]
    assert (view.event_id, view.at) == ("view-1", viewed)
    assert view.properties["sku"] == "SERUM-30"
    order = events[2].properties
    assert (order["order_id"], order["total"], order["currency"]) == ("o-1", 24.0, "EUR")
    assert order["products"][0]["sku"] == "SERUM-30"
    with collector.engine.connect() as connection:
        customer = connection.execute(
            select(Customer.__table__).where(text("id = 'c-42'"))  # type: ignore[call-overload]
        ).one()
        anonymous = connection.execute(
            select(Identity.__table__).where(  # type: ignore[call-overload]
                text("kind = 'anonymous_id' AND value = 'anon-1'")
            )
        ).one()
    assert customer.email == "ana@example.com"
    assert (customer.timezone, customer.locale) == ("Europe/Berlin", "de-DE")
    assert customer.attributes["first_name"] == "Ana"
    assert anonymous.customer_id == "c-42"


def test_segment_library_with_a_wrong_write_key_gets_401(
    segment: Any, collector: Collector
) -> None:
    segment.write_key = "not-a-key"
    with pytest.raises(segment_request.APIError) as caught:
        segment.track(user_id="c-1", event="x")
    assert caught.value.status == 401
    assert caught.value.code == "invalid-write-key"
    assert collector.count(Event.__table__) == 0


# --- write keys ---------------------------------------------------------------------


def test_write_key_in_the_body_is_accepted(collector: Collector) -> None:
    response = collector.post("/v1/track", {**_track("m-1"), "writeKey": "wk-test-2"}, auth=None)
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True}
    assert [e.event_id for e in collector.events()] == ["m-1"]


@pytest.mark.parametrize(
    ("auth", "body_key", "reason"),
    [
        (None, None, "missing-write-key"),
        (("wrong", ""), None, "invalid-write-key"),
        (("wrong", ""), WRITE_KEY, "invalid-write-key"),
        (None, "wrong", "invalid-write-key"),
    ],
)
def test_missing_or_wrong_write_key_is_401_and_stores_nothing(
    collector: Collector, auth: tuple[str, str] | None, body_key: str | None, reason: str
) -> None:
    body = _track("m-1") if body_key is None else {**_track("m-1"), "writeKey": body_key}
    response = collector.post("/v1/track", body, auth=auth)
    assert response.status_code == 401
    assert response.json()["reason"] == reason
    assert response.headers["www-authenticate"].startswith("Basic")
    assert collector.count(Event.__table__) == 0


def test_with_no_write_keys_configured_everything_is_refused(sqlite_store: Engine) -> None:
    with serving(sqlite_store, _settings(write_keys=" , ")) as url:
        response = httpx.post(f"{url}/v1/track", json=_track("m-1"), auth=("anything", ""))
        health = httpx.get(f"{url}/health")
    assert response.status_code == 401
    assert response.json()["reason"] == "no-write-keys"
    assert "OMNI_WRITE_KEYS" in response.json()["message"]
    assert health.json() == {"status": "ok"}


# --- bodies ---------------------------------------------------------------------------


def test_gzip_body_is_decoded(collector: Collector) -> None:
    body = httpx.Request("POST", "/", json={"batch": [_track("m-1"), _track("m-2")]}).content
    response = collector.http.post(
        f"{collector.url}/v1/batch",
        content=gzip.compress(body),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        auth=(WRITE_KEY, ""),
    )
    assert response.status_code == 200, response.text
    assert [e.event_id for e in collector.events()] == ["m-1", "m-2"]


def test_oversized_body_is_413(collector: Collector) -> None:
    big = _track("m-1", properties={"blob": "x" * LIMIT})
    response = collector.post("/v1/track", big)
    assert response.status_code == 413
    assert response.json()["reason"] == "body-too-large"
    assert collector.count(Event.__table__) == 0


def test_oversized_body_without_content_length_is_413_while_reading(
    collector: Collector,
) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(5):
            yield b" " * 1024

    response = collector.http.post(
        f"{collector.url}/v1/track", content=chunks(), auth=(WRITE_KEY, "")
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413


def test_gzip_bomb_is_413_after_decoding(collector: Collector) -> None:
    bomb = gzip.compress(b'{"batch": [], "pad": "' + b"0" * 3_000_000 + b'"}')
    assert len(bomb) < LIMIT
    response = collector.http.post(
        f"{collector.url}/v1/batch",
        content=bomb,
        headers={"Content-Encoding": "gzip"},
        auth=(WRITE_KEY, ""),
    )
    assert response.status_code == 413
    assert response.json()["reason"] == "body-too-large"


@pytest.mark.parametrize(
    ("content", "headers", "status", "reason"),
    [
        (b'{"batch": [', {}, 400, "invalid-json"),
        (b"[1, 2]", {}, 400, "invalid-shape"),
        (b'{"batch": {}}', {}, 400, "invalid-shape"),
        (b"not gzip", {"Content-Encoding": "gzip"}, 400, "invalid-gzip"),
        (gzip.compress(b"{}", mtime=0)[:-4], {"Content-Encoding": "gzip"}, 400, "invalid-gzip"),
        (b"{}", {"Content-Encoding": "br"}, 415, "unsupported-encoding"),
    ],
)
def test_bad_bodies_get_a_json_reason(
    collector: Collector, content: bytes, headers: dict[str, str], status: int, reason: str
) -> None:
    response = collector.http.post(
        f"{collector.url}/v1/batch", content=content, headers=headers, auth=(WRITE_KEY, "")
    )
    assert response.status_code == status
    assert response.json() == {
        "success": False,
        "reason": reason,
        "code": reason,
        "message": response.json()["message"],
    }


# --- batches ----------------------------------------------------------------------


def test_a_malformed_batch_item_is_rejected_while_the_rest_goes_in(collector: Collector) -> None:
    response = collector.post(
        "/v1/batch",
        {
            "batch": [
                _track("m-1"),
                {"type": "track", "messageId": "m-2", "event": "Product Viewed"},  # nobody
                _track("m-3", timestamp="yesterday"),
                "not a message",
                _track("m-5", event="Cart Viewed"),
            ]
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["success"], body["accepted"], body["duplicates"]) == (True, 2, 0)
    assert [(r["index"], r["reason"]) for r in body["rejected"]] == [
        (1, "missing-user-id"),
        (2, "invalid-timestamp"),
        (3, "invalid-shape"),
    ]
    assert [(e.event_id, e.name) for e in collector.events()] == [
        ("m-1", "product.viewed"),
        ("m-5", "cart.viewed"),
    ]


def test_replaying_a_batch_stores_nothing_new(collector: Collector) -> None:
    batch = {
        "batch": [
            _track("m-1", userId=None, anonymousId="anon-9"),
            {"type": "identify", "userId": "c-9", "anonymousId": "anon-9", "traits": {"x": 1}},
            _track("m-3", userId="c-9"),
            {
                "type": "track",
                "event": "No Id",
                "userId": "c-9",
                "timestamp": "2026-05-01T08:00:00Z",
            },
        ]
    }
    first = collector.post("/v1/batch", batch).json()
    tables = (Event.__table__, Customer.__table__, Identity.__table__)
    before = [collector.count(t) for t in tables]
    events_before = collector.events()
    second = collector.post("/v1/batch", batch).json()

    assert first["rejected"] == second["rejected"] == []
    assert second["duplicates"] >= 3  # every event; a repeated profile may count too
    assert second["accepted"] + second["duplicates"] == first["accepted"] + first["duplicates"]
    assert [collector.count(t) for t in tables] == before
    assert collector.events() == events_before
    assert len(events_before) == 3


def test_single_call_endpoints_and_short_forms(collector: Collector) -> None:
    calls = [
        ("/v1/track", _track("t-1")),
        ("/v1/t", _track("t-2")),
        ("/v1/page", {"messageId": "p-1", "userId": "c-1", "name": "Home"}),
        ("/v1/screen", {"messageId": "s-1", "userId": "c-1", "name": "Cart"}),
        ("/v1/identify", {"userId": "c-1", "traits": {"email": "c1@example.com"}}),
        ("/v1/alias", {"userId": "c-1", "previousId": "anon-7"}),
    ]
    for path, body in calls:
        response = collector.post(path, body)
        assert (path, response.status_code, response.json()) == (path, 200, {"success": True})
    names = [(e.event_id, e.name) for e in collector.events()]
    assert names == [
        ("t-1", "product.viewed"),
        ("t-2", "product.viewed"),
        ("p-1", "page.viewed"),
        ("s-1", "screen.viewed"),
    ]


def test_a_refused_single_call_is_400_with_the_reason(collector: Collector) -> None:
    response = collector.post("/v1/track", {"event": "x", "messageId": "m-1"})
    assert response.status_code == 400
    assert response.json()["reason"] == "missing-user-id"
    assert collector.count(Event.__table__) == 0


def test_ingestion_reasons_come_back_to_the_sender(collector: Collector) -> None:
    single = collector.post("/v1/identify", {"userId": "c-1", "traits": {"email": "ana@"}})
    batch = collector.post(
        "/v1/batch",
        {
            "batch": [
                {"type": "identify", "userId": "c-1", "context": {"timezone": "Mars/Olympus"}},
                {"type": "identify", "userId": "c-1", "traits": {"consent": {"fax": True}}},
                _track("m-3"),
            ]
        },
    ).json()
    assert (single.status_code, single.json()["reason"]) == (400, "invalid-email")
    assert "ana@" not in single.text
    assert [(r["index"], r["reason"]) for r in batch["rejected"]] == [
        (0, "invalid-timezone"),
        (1, "invalid-consent"),
    ]
    assert batch["accepted"] == 1


@pytest.mark.parametrize(
    "timestamp", ["2026-05-01T10:00:00", "yesterday", 1714557600, "2026-13-01T00:00:00Z"]
)
def test_bad_or_zoneless_timestamps_are_refused_never_guessed(
    collector: Collector, timestamp: object
) -> None:
    response = collector.post("/v1/track", _track("m-1", timestamp=timestamp))
    assert (response.status_code, response.json()["reason"]) == (400, "invalid-timestamp")
    assert collector.count(Event.__table__) == 0


# --- operations -------------------------------------------------------------------


def test_store_failure_is_503_and_nothing_is_acknowledged() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]  # nobody listens here once closed
    engine = create_store_engine(f"postgresql+psycopg://omni@127.0.0.1:{dead_port}/none")
    try:
        with serving(engine, _settings()) as url:
            response = httpx.post(f"{url}/v1/track", json=_track("m-1"), auth=(WRITE_KEY, ""))
    finally:
        engine.dispose()
    assert response.status_code == 503
    assert response.json()["reason"] == "store-unavailable"


def test_the_event_loop_keeps_serving_while_the_store_is_busy(sqlite_store: Engine) -> None:
    with serving(sqlite_store, _settings()) as url, httpx.Client(timeout=30) as http:
        results: list[httpx.Response] = []
        poster = threading.Thread(
            target=lambda: results.append(
                http.post(f"{url}/v1/track", json=_track("m-1"), auth=(WRITE_KEY, ""))
            )
        )
        locker = sqlite3.connect(str(sqlite_store.url.database), isolation_level=None)
        try:
            locker.execute("BEGIN IMMEDIATE")  # holds SQLite's write lock
            poster.start()
            time.sleep(0.3)  # let the POST reach the database and wait for the lock
            started = time.monotonic()
            health = http.get(f"{url}/health")
            waited = time.monotonic() - started
            assert not results, "the POST should still be waiting for the write lock"
        finally:
            locker.close()  # releases the lock
            poster.join(timeout=30)
    assert health.status_code == 200
    assert waited < 5
    assert results[0].status_code == 200


def test_logs_carry_no_personal_data(
    collector: Collector, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    collector.post(
        "/v1/batch",
        {
            "batch": [
                _track("m-1", context={"traits": {"email": "ana@example.com"}}),
                {"type": "identify", "userId": "c-77", "traits": {"phone": "+4915112345678"}},
                _track("m-3", userId=None),
            ]
        },
    )
    collector.post("/v1/track", _track("m-4"), auth=("secret-wrong-key", ""))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "stored batch" in logged
    for secret in ("ana@example.com", "+4915112345678", "c-77", "secret-wrong-key", WRITE_KEY):
        assert secret not in logged


def test_serve_command_runs_the_collector(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "OMNI_HOME": str(tmp_path / "home"), "OMNI_WRITE_KEYS": WRITE_KEY}
    env.pop("OMNI_DATABASE_URL", None)
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "omni-journey"), "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health")
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()[0].decode()
                assert time.monotonic() < deadline, "omni-journey serve did not start"
                time.sleep(0.1)
        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/track", json=_track("cli-1"), auth=(WRITE_KEY, "")
        )
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    assert health.json() == {"status": "ok"}
    assert response.status_code == 200, response.text
    # uvicorn shuts down gracefully, then lets SIGTERM end the process as usual.
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert f"http://127.0.0.1:{port}" in output
    engine = create_store_engine(f"sqlite:///{tmp_path / 'home' / 'omni.db'}")
    try:
        with engine.connect() as connection:
            stored = connection.execute(text("SELECT event_id FROM events")).scalars().all()
    finally:
        engine.dispose()
    assert stored == ["cli-1"]
