"""The rows the dispatcher works on: a claimed outbox row, and how it ends a pass."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

__all__ = ["Finish", "OutboxRow", "Status"]

Status = Literal["sent", "failed", "suppressed", "pending"]


@dataclass(frozen=True)
class OutboxRow:
    """One claimed outbox row, as the renderer and the dispatcher see it."""

    id: int
    idempotency_key: str
    customer_id: str
    channel: str
    message_key: str
    send_after: datetime
    attempts: int
    decision: dict[str, Any]
    enrollment_id: int | None = None
    journey_key: str | None = None
    journey_version_id: int | None = None
    step_id: str | None = None
    created_at: datetime | None = None
    in_doubt: bool = False  # a previous sender crashed during its provider call
    # claimed from an expired claim that never reached a provider: its sender died before
    # the call (perhaps while rendering it), so it is rendered apart from its batch
    taken_over: bool = False
    render_context: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, row: Any) -> OutboxRow:
        return cls(
            id=row.id,
            idempotency_key=row.idempotency_key,
            customer_id=row.customer_id,
            channel=row.channel,
            message_key=row.message_key,
            send_after=row.send_after,
            attempts=row.attempts,
            decision=dict(row.decision or {}),
            enrollment_id=row.enrollment_id,
            journey_key=row.journey_key,
            journey_version_id=row.journey_version_id,
            step_id=row.step_id,
            created_at=row.created_at,
            in_doubt=row.in_flight_since is not None,
            taken_over=row.status == "claimed" and row.in_flight_since is None,
            render_context=dict(getattr(row, "render_context", None) or {}),
        )

    def describe(self) -> str:
        """For logs: ids only, never an address."""
        return (
            f"message={self.id} journey={self.journey_key} version={self.journey_version_id} "
            f"step={self.step_id} enrollment={self.enrollment_id} channel={self.channel}"
        )


@dataclass
class Finish:
    """How one claimed row ends this pass."""

    row: OutboxRow
    status: Status
    at: datetime
    customer_id: str
    error: str | None = None
    error_code: str | None = None
    send_after: datetime | None = None  # for status pending
    attempts_delta: int = 0  # added to the stored attempts
    provider: str | None = None
    provider_message_id: str | None = None
    suppress: tuple[str, str, str] | None = None  # (channel, address, reason)
    prune_push_token: str | None = None
    event: str | None = None  # "message.sent" | "message.failed"
    keep_in_flight: bool = False  # failed in doubt: ``in_flight_since`` stays, to list it
    extra: dict[str, Any] = field(default_factory=dict)
