"""Signed webhooks, checked by a real receiver on a local HTTP server.

The receiver verifies the way docs/operations.md tells receivers to, written here from
the Standard Webhooks scheme and not with omni-journey's code: recompute
``v1,base64(HMAC-SHA256(secret, "<webhook-id>.<webhook-timestamp>.<body>"))``, compare
in constant time with each signature in ``webhook-signature``, refuse a timestamp more
than five minutes away. The secret fails closed: no provider without a key in force.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from omni_journey.delivery.base import Content, OutgoingMessage
from omni_journey.delivery.webhook import WebhookProvider, create_webhook_provider
from omni_journey.errors import ConfigError, PermanentDeliveryError
from omni_journey.settings import Settings

KEY = "receiver-shared-secret-0123456789"
OLD = "receiver-old-secret-9876543210ab"
TOLERANCE = 300
NOW = 1_800_000_000.0


def verify(secret: str, headers: Any, body: bytes, now: float) -> bool:
    """A receiver's check, from the Standard Webhooks scheme."""
    message_id, stamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(now - int(stamp)) > TOLERANCE:
        return False
    signed = f"{message_id}.{stamp}.".encode() + body
    expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest())
    return any(
        hmac.compare_digest(expected.decode(), entry.partition(",")[2])
        for entry in headers["webhook-signature"].split(" ")
        if entry.startswith("v1,")
    )


class Receiver:
    """A local HTTP server that verifies each call with its own copy of the secret."""

    def __init__(self, secret: str, now: float) -> None:
        self.secret, self.now = secret, now
        self.calls: list[tuple[dict[str, str], bytes, bool]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                ok = verify(receiver.secret, self.headers, body, receiver.now)
                receiver.calls.append(({k.lower(): v for k, v in self.headers.items()}, body, ok))
                self.send_response(200 if ok else 401)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/in"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver(KEY, NOW)
    thread = threading.Thread(target=found.server.serve_forever, daemon=True)
    thread.start()
    yield found
    found.server.shutdown()
    found.server.server_close()


def _message(url: str, key: str = "hello:1:42:tell", **payload: Any) -> OutgoingMessage:
    return OutgoingMessage(
        id=42, idempotency_key=key, channel="webhook", customer_id="c-1", to=url,
        content=Content.of({"payload": payload, "headers": {"webhook-id": "forged"}}),
        at=datetime(2027, 1, 15, 8, 0, tzinfo=UTC),
    )  # fmt: skip


def _provider(settings: Settings, clock: float = NOW) -> WebhookProvider:
    provider = create_webhook_provider(settings)
    provider._clock = lambda: clock  # the receiver's tolerance is checked against it
    return provider


def test_a_receiver_verifies_the_signature_and_the_body_arrives_as_signed(
    receiver: Receiver, tmp_path: Path
) -> None:
    provider = _provider(Settings(home=tmp_path, secret_key=SecretStr(KEY)))
    [result] = provider.send_batch([_message(receiver.url, order="A-1", total=24.5)])
    assert result.ok
    [(headers, body, ok)] = receiver.calls
    assert ok
    assert json.loads(body) == {"order": "A-1", "total": 24.5}
    # the outbox key on every attempt (a journey cannot override it), the time of signing
    assert headers["webhook-id"] == headers["idempotency-key"] == "hello:1:42:tell"
    assert headers["webhook-timestamp"] == str(int(NOW))


def test_a_tampered_body_another_secret_or_an_old_timestamp_is_refused(
    receiver: Receiver, tmp_path: Path
) -> None:
    provider = _provider(Settings(home=tmp_path, secret_key=SecretStr(KEY)))
    provider.send_batch([_message(receiver.url, order="A-1")])
    headers, body, _ = receiver.calls[0]
    assert verify(KEY, headers, body, NOW)
    assert not verify(KEY, headers, body.replace(b"A-1", b"A-2"), NOW)
    assert not verify(KEY, {**headers, "webhook-id": "other"}, body, NOW)
    assert not verify("another-secret-of-some-length", headers, body, NOW)
    assert not verify(KEY, headers, body, NOW + TOLERANCE + 1)  # a replay, later
    forged = _provider(Settings(home=tmp_path, secret_key=SecretStr("a-guess-at-the-key-123")))
    [refused] = forged.send_batch([_message(receiver.url, order="A-1")])
    assert not receiver.calls[1][2]
    assert isinstance(refused.error, PermanentDeliveryError) and refused.error.code == "http_401"
    # a stale timestamp from the sender's side: the receiver refuses it too
    late = _provider(Settings(home=tmp_path, secret_key=SecretStr(KEY)), clock=NOW - 3600)
    [stale] = late.send_batch([_message(receiver.url, order="A-1")])
    assert not receiver.calls[2][2] and not stale.ok


def test_during_a_rotation_receivers_with_either_key_verify(
    receiver: Receiver, tmp_path: Path
) -> None:
    rotated = Settings(
        home=tmp_path, secret_key=SecretStr(KEY), previous_secret_keys=SecretStr(OLD)
    )
    provider = _provider(rotated)
    receiver.secret = OLD  # a receiver not yet given the new key
    [result] = provider.send_batch([_message(receiver.url, order="A-1")])
    assert result.ok
    headers, body, _ = receiver.calls[0]
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert verify(KEY, headers, body, NOW) and verify(OLD, headers, body, NOW)


def test_the_webhook_secret_fails_closed(tmp_path: Path) -> None:
    shared = Settings(home=tmp_path, database_url="postgresql+psycopg://u@db.example/omni")
    with pytest.raises(ConfigError) as refused:
        create_webhook_provider(shared)
    assert "OMNI_SECRET_KEY" in str(refused.value)
    with pytest.raises(ConfigError):
        create_webhook_provider(Settings(home=tmp_path, secret_key=SecretStr("short")))
    with pytest.raises(ValueError, match="OMNI_SECRET_KEY"):
        WebhookProvider(httpx.Client(), secret="")
