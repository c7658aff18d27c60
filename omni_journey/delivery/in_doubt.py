"""Messages in doubt: a sender died during their provider call, so the provider may or
may not have delivered them. Listed for an operator (ids and times only, never an
address), and settled by delivery feedback when the provider reports on them.

A row is in doubt while ``in_flight_since`` is set and either its sender's claim expired
before a result was written (``status = 'claimed'``: the next pass fails or resends it,
see ``OMNI_DISPATCH_IN_DOUBT``) or it was failed as ``in_doubt`` (``status =
'failed'``; ``in_flight_since`` is kept to say so). Feedback that names the row (SES's
``omni_message`` email tag, or its SES message id) settles it: a Send or Delivery
notification makes it ``sent`` (with a ``message.sent`` event), a permanent bounce or a
reject ``failed``. Feedback about a row that is not in doubt changes no status.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Table, and_, or_, select

from omni_journey.delivery.message_events import message_event
from omni_journey.delivery.outbox import settle_row
from omni_journey.store.events import append_new_events
from omni_journey.store.tables import Message

__all__ = ["InDoubt", "list_in_doubt", "settle_in_doubt"]

_MESSAGES: Table = Message.__table__  # type: ignore[attr-defined]
M = _MESSAGES.c


@dataclass(frozen=True)
class InDoubt:
    """One message in doubt, as an operator sees it: ids, where it came from, since when.

    ``state``: ``failed`` (failed as ``in_doubt``: the provider may have delivered it) or
    ``orphaned`` (its sender died mid-call; the next pass after ``claimed_until`` fails
    or resends it)."""

    id: int
    journey: str | None
    step: str | None
    enrollment_id: int | None
    channel: str
    provider: str | None
    since: datetime | None
    state: str

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["since"] = self.since.isoformat() if self.since else None
        return values


def _in_doubt(now: datetime) -> Any:
    return and_(
        M.in_flight_since.is_not(None),
        or_(M.status == "failed", and_(M.status == "claimed", M.claimed_until < now)),
    )


def list_in_doubt(connection: Connection, *, now: datetime, limit: int = 1000) -> list[InDoubt]:
    """The messages in doubt at ``now``, oldest first (at most ``limit``)."""
    rows = connection.execute(
        select(
            M.id,
            M.journey_key,
            M.step_id,
            M.enrollment_id,
            M.channel,
            M.provider,
            M.in_flight_since,
            M.status,
        )
        .where(_in_doubt(now))
        .order_by(M.in_flight_since, M.id)
        .limit(limit)
    ).all()
    return [
        InDoubt(
            id=row.id,
            journey=row.journey_key,
            step=row.step_id,
            enrollment_id=row.enrollment_id,
            channel=row.channel,
            provider=row.provider,
            since=row.in_flight_since,
            state="failed" if row.status == "failed" else "orphaned",
        )
        for row in rows
    ]


def settle_in_doubt(
    connection: Connection,
    row: Any,
    outcome: Literal["sent", "failed"],
    *,
    at: datetime,
    provider: str,
    provider_message_id: str | None,
    reason: str | None = None,
) -> bool:
    """Settle ``row`` (a ``messages`` row) from the provider's feedback if it is in doubt:
    ``sent`` or ``failed`` (``reason``), in ``connection``'s transaction. Returns whether
    it was in doubt. A row still claimed by a live sender is settled too (the feedback
    says its call got through); that sender's own result then finds its claim gone."""
    if not settle_row(
        connection,
        row.id,
        outcome,
        at=at,
        provider=provider,
        provider_message_id=provider_message_id,
        reason=reason,
    ):
        return False
    name = "message.sent" if outcome == "sent" else "message.failed"
    # from the provider's feedback, after the sender died; the provider id always named
    extra = {"provider_message_id": provider_message_id, "reconciled": True}
    event = message_event(row, name, customer_id=row.customer_id, at=at, provider=provider,
                          reason=reason, extra=extra)  # fmt: skip
    append_new_events(connection, [event])
    return True
