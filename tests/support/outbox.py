"""Seeding the store for delivery tests: customers, consent, tokens, outbox rows."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from omni_journey.delivery import (
    Content,
    CustomerView,
    OutboxRow,
    OutgoingMessage,
    SendResult,
)
from omni_journey.errors import DeliveryError
from omni_journey.store.tables import Consent, Customer, Identity, Message

T0 = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


def add_customer(
    engine: Engine,
    customer_id: str,
    *,
    email: str | None = None,
    phone: str | None = None,
    push_tokens: Sequence[str] = (),
    consent: Sequence[str] = ("email", "sms", "push", "whatsapp"),
    attributes: dict[str, Any] | None = None,
) -> None:
    with engine.begin() as connection:
        connection.execute(
            Customer.__table__.insert(),  # type: ignore[attr-defined]
            [{"id": customer_id, "email": email, "phone": phone, "attributes": attributes or {},
              "created_at": T0, "updated_at": T0}],
        )  # fmt: skip
        for token in push_tokens:
            connection.execute(
                Identity.__table__.insert(),  # type: ignore[attr-defined]
                [{"kind": "push_token", "value": token, "customer_id": customer_id,
                  "created_at": T0}],
            )  # fmt: skip
        for channel in consent:
            connection.execute(
                Consent.__table__.insert(),  # type: ignore[attr-defined]
                [{"customer_id": customer_id, "channel": channel, "granted": True,
                  "updated_at": T0}],
            )  # fmt: skip


def add_message(
    engine: Engine,
    key: str,
    customer_id: str,
    channel: str,
    *,
    send_after: datetime = T0,
    message_key: str = "welcome",
    decision: dict[str, Any] | None = None,
    **columns: Any,
) -> int:
    with engine.begin() as connection:
        result = connection.execute(
            Message.__table__.insert().returning(Message.__table__.c.id),  # type: ignore[attr-defined]
            [{"idempotency_key": key, "customer_id": customer_id, "channel": channel,
              "message_key": message_key, "status": "pending", "send_after": send_after,
              "created_at": T0, "attempts": 0, "journey_key": "welcome", "step_id": "hello",
              "decision": decision or {}, **columns}],
        )  # fmt: skip
        return int(result.scalar_one())


def messages(engine: Engine) -> dict[str, Any]:
    """Outbox rows by idempotency key."""
    with engine.connect() as connection:
        rows = connection.execute(select(Message.__table__)).all()  # type: ignore[attr-defined]
    return {row.idempotency_key: row for row in rows}


def simple_renderer(message: OutboxRow, customer: CustomerView) -> dict[str, Any]:
    name = customer.attributes.get("first_name", "there")
    return {
        "subject": f"Hello {name}",
        "html": f"<p>Hello <b>{name}</b></p>",
        "text": f"Hello {name}",
        "title": "Hello",
        "body": f"Hello {name}",
        "data": {"message": message.message_key},
        "template": "hello_v1",
        "language": "en",
        "params": [name],
    }


@dataclass
class RecordingProvider:
    """An in-memory provider (httpx's MockTransport in spirit): records every send;
    ``errors`` maps an address to the error to answer for it."""

    name: str = "memory"
    max_batch: int = 10
    idempotent = False
    errors: dict[str, DeliveryError] = field(default_factory=dict)
    sent: list[OutgoingMessage] = field(default_factory=list)
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send_batch(self, batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        results = []
        with self.lock:
            self.calls += 1
        for message in batch:
            error = self.errors.get(message.to)
            if error is not None:
                results.append(SendResult.failed(message, error))
                continue
            with self.lock:
                self.sent.append(message)
            results.append(SendResult.sent(message, f"{self.name}-{message.id}"))
        return results


__all__ = [
    "T0",
    "Content",
    "RecordingProvider",
    "add_customer",
    "add_message",
    "messages",
    "simple_renderer",
]
