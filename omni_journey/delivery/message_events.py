"""The event that says what became of one outbox row: ``message.sent`` or
``message.failed``, built in one place for the dispatcher and for feedback that
settles a message in doubt."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

__all__ = ["message_event"]


def message_event(
    row: Any,
    name: str,
    *,
    customer_id: str,
    at: datetime,
    provider: str | None,
    provider_message_id: str | None = None,
    reason: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``message.sent`` / ``message.failed`` event row of one outbox row (id
    ``<name>:<outbox id>``, so it is written once), whoever settles it."""
    properties: dict[str, Any] = {
        "message_id": row.id,
        "idempotency_key": row.idempotency_key,
        "channel": row.channel,
        "message": row.message_key,
        "journey": row.journey_key,
        "journey_version_id": row.journey_version_id,
        "step": row.step_id,
        "enrollment_id": row.enrollment_id,
        "provider": provider,
    }
    if provider_message_id:
        properties["provider_message_id"] = provider_message_id
    if reason:
        properties["reason"] = reason
    properties.update(extra or {})
    return {
        "event_id": f"{name}:{row.id}",
        "name": name,
        "customer_id": customer_id,
        "at": at,
        "received_at": at,
        "properties": properties,
    }
