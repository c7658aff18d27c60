"""Webhook steps: POST the step's JSON body, signed, to the step's URL.

The body is sent as canonical JSON (sorted keys, no spaces) and signed under
``OMNI_SECRET_KEY`` (which fails closed: :func:`omni_journey.links.signing_keys`) in
the style of Standard Webhooks (standardwebhooks.com):

- ``webhook-id``: the outbox key, the same on every retry of one message (also sent as
  ``Idempotency-Key``, so a receiver can drop repeats: this provider is idempotent);
- ``webhook-timestamp``: Unix seconds when this attempt was signed;
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``, one
  per key in force, space-separated (the signing key first, then
  ``OMNI_PREVIOUS_SECRET_KEYS``, so receivers keep verifying during a key rotation).

A receiver recomputes one signature with its copy of the secret, compares it in constant
time and refuses a timestamp more than a few minutes off its clock (a replay). The
earlier ``X-Omni-Signature: sha256=<hex HMAC-SHA256 of the body>`` is still sent for
receivers written against it; it has no timestamp, so it does not stop a replay.
5xx, 408, 425, 429 and timeouts are transient; other 4xx are permanent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Sequence
from typing import ClassVar

import httpx

from omni_journey.delivery.base import OutgoingMessage, SendResult, send_each_concurrently
from omni_journey.errors import PermanentDeliveryError, TransientDeliveryError
from omni_journey.links import signing_keys
from omni_journey.settings import Settings

__all__ = ["WebhookProvider", "create_webhook_provider", "sign_body", "standard_signature"]

SIGNATURE_HEADER = "X-Omni-Signature"
_TRANSIENT_STATUS = frozenset({408, 425, 429})
_SIGNED = ("webhook-id", "webhook-timestamp", "webhook-signature", "idempotency-key")
# Headers a journey may not set: the transport and the signatures are ours.
_RESERVED = frozenset(
    {"content-length", "host", "content-type", SIGNATURE_HEADER.lower(), *_SIGNED}
)


def sign_body(secret: str, body: bytes) -> str:
    """The value of ``X-Omni-Signature`` for ``body`` (no timestamp: kept for receivers
    written against it)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def standard_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One ``webhook-signature`` entry: ``v1,<base64 HMAC-SHA256>`` over
    ``<id>.<timestamp>.<body>``, keyed with the UTF-8 bytes of ``secret``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


class WebhookProvider:
    name = "webhook"
    max_batch = 20
    idempotent: ClassVar[bool] = True

    def __init__(
        self,
        client: httpx.Client,
        *,
        secret: str | Sequence[str],
        concurrency: int = 4,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``secret``: the signing key, or the keys in force with the signing key first."""
        keys = (secret,) if isinstance(secret, str) else tuple(secret)
        if not keys or not all(keys):
            raise ValueError("the webhook secret is empty (set OMNI_SECRET_KEY)")
        self.client = client
        self.secret = keys[0]
        self.keys = keys
        self.concurrency = concurrency
        self._clock = clock

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        return send_each_concurrently(messages, self._send_one, self.concurrency)

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        body = json.dumps(
            message.content.payload or {}, sort_keys=True, separators=(",", ":")
        ).encode()
        headers = {k: v for k, v in message.content.headers.items() if k.lower() not in _RESERVED}
        stamp = int(self._clock())
        key = message.idempotency_key
        headers.update(
            {
                "Content-Type": "application/json",
                "Idempotency-Key": key,
                "webhook-id": key,
                "webhook-timestamp": str(stamp),
                "webhook-signature": " ".join(
                    standard_signature(secret, key, stamp, body) for secret in self.keys
                ),
                SIGNATURE_HEADER: sign_body(self.secret, body),
            }
        )
        try:
            response = self.client.post(message.to, content=body, headers=headers)
        except httpx.TimeoutException as error:
            raise TransientDeliveryError("webhook", "timeout", type(error).__name__) from None
        except httpx.TransportError as error:
            raise TransientDeliveryError(
                "webhook", "connection_error", type(error).__name__
            ) from None
        except httpx.InvalidURL:
            raise PermanentDeliveryError("webhook", "invalid_url") from None
        status = response.status_code
        if status >= 500 or status in _TRANSIENT_STATUS:
            raise TransientDeliveryError("webhook", f"http_{status}")
        if status >= 400:
            raise PermanentDeliveryError("webhook", f"http_{status}")
        request_id = response.headers.get("x-request-id") or f"http_{status}"
        return SendResult.sent(message, request_id)


def create_webhook_provider(settings: Settings) -> WebhookProvider:
    """Entry point ``webhook``."""
    client = httpx.Client(timeout=settings.webhook_timeout_seconds, follow_redirects=False)
    return WebhookProvider(
        client,
        secret=signing_keys(settings),
        concurrency=settings.send_concurrency,
    )
