"""Token bucket, E.164, opt-out keywords, webhook signatures (MIME: test_mime.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

import httpx
import pytest

from omni_journey.delivery import Content, OutgoingMessage
from omni_journey.delivery.optout import is_opt_out
from omni_journey.delivery.ratelimit import TokenBucket
from omni_journey.delivery.sms import is_e164
from omni_journey.delivery.webhook import WebhookProvider
from omni_journey.errors import PermanentDeliveryError, TransientDeliveryError

AT = datetime(2026, 5, 1, 10, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(5, clock=clock, sleep=clock.sleep)
    assert [bucket.acquire() for _ in range(5)] == [0.0] * 5
    assert bucket.acquire() == pytest.approx(0.2)
    assert bucket.acquire(10) == pytest.approx(2.0)
    clock.t += 100  # idle time saves at most one burst
    assert bucket.acquire(5) == 0.0 and bucket.acquire() == pytest.approx(0.2)


def test_unlimited_bucket_never_sleeps() -> None:
    assert TokenBucket(None).acquire(10_000) == 0.0


@pytest.mark.parametrize(
    ("number", "ok"),
    [("+4915112345678", True), ("+14155552671", True), ("4915112345678", False),
     ("+49 151 1234567", False), ("+0123456789", False), ("+12", False), ("", False)],
)  # fmt: skip
def test_e164(number: str, ok: bool) -> None:
    assert is_e164(number) is ok


@pytest.mark.parametrize(
    ("text", "opt_out"),
    [("STOP", True), (" stop. ", True), ("Unsubscribe", True), ("ARRET", True),
     ("stop it please", False), ("yes", False)],
)  # fmt: skip
def test_opt_out_keywords(text: str, opt_out: bool) -> None:
    assert is_opt_out(text) is opt_out


def _message(**content: object) -> OutgoingMessage:
    return OutgoingMessage(
        id=7, idempotency_key="k-7", channel="webhook", customer_id="c-1",
        to="https://hooks.example.com/in", content=Content.of(content), at=AT,
    )  # fmt: skip


def test_webhook_is_signed_with_hmac_sha256_and_maps_status_codes() -> None:
    seen: list[httpx.Request] = []
    statuses = iter([200, 503, 404])

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(next(statuses))

    provider = WebhookProvider(httpx.Client(transport=httpx.MockTransport(handler)), secret="k")
    message = _message(payload={"b": 2, "a": 1}, headers={"X-Custom": "1", "Host": "evil"})
    ok, down, gone = (provider.send_batch([message])[0] for _ in range(3))
    body = seen[0].content
    assert json.loads(body) == {"a": 1, "b": 2}
    expected = "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert seen[0].headers["X-Omni-Signature"] == expected
    assert seen[0].headers["Idempotency-Key"] == "k-7"
    assert seen[0].headers["X-Custom"] == "1" and seen[0].headers["Host"] != "evil"
    assert ok.ok
    assert isinstance(down.error, TransientDeliveryError)
    assert isinstance(gone.error, PermanentDeliveryError) and not gone.error.transient


def test_webhook_timeout_is_transient() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    provider = WebhookProvider(httpx.Client(transport=httpx.MockTransport(handler)), secret="k")
    [result] = provider.send_batch([_message(payload={})])
    assert isinstance(result.error, TransientDeliveryError) and result.error.code == "timeout"
