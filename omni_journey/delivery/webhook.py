"""Webhook steps: POST the step's JSON body, signed, to the step's URL.

The body is sent as canonical JSON (sorted keys, no spaces) and signed with
HMAC-SHA256 under ``OMNI_SECRET_KEY``: ``X-Omni-Signature: sha256=<hex>``. The
``Idempotency-Key`` header carries the outbox key so a receiver can drop repeats
(which makes this provider idempotent). 5xx, 408, 429 and timeouts are transient;
other 4xx are permanent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import ClassVar

import httpx

from omni_journey.delivery.base import OutgoingMessage, SendResult, send_each_concurrently
from omni_journey.errors import PermanentDeliveryError, TransientDeliveryError
from omni_journey.links import signing_keys
from omni_journey.settings import Settings

__all__ = ["WebhookProvider", "create_webhook_provider", "sign_body"]

SIGNATURE_HEADER = "X-Omni-Signature"
_TRANSIENT_STATUS = frozenset({408, 425, 429})
# Headers a journey may not set: the transport and the signature are ours.
_RESERVED = frozenset({"content-length", "host", "content-type", SIGNATURE_HEADER.lower()})


def sign_body(secret: str, body: bytes) -> str:
    """The value of ``X-Omni-Signature`` for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookProvider:
    name = "webhook"
    max_batch = 20
    idempotent: ClassVar[bool] = True

    def __init__(self, client: httpx.Client, *, secret: str, concurrency: int = 4) -> None:
        self.client = client
        self.secret = secret
        self.concurrency = concurrency

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        return send_each_concurrently(messages, self._send_one, self.concurrency)

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        body = json.dumps(
            message.content.payload or {}, sort_keys=True, separators=(",", ":")
        ).encode()
        headers = {k: v for k, v in message.content.headers.items() if k.lower() not in _RESERVED}
        headers.update(
            {
                "Content-Type": "application/json",
                "Idempotency-Key": message.idempotency_key,
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
        secret=signing_keys(settings)[0],
        concurrency=settings.send_concurrency,
    )
