"""The dispatcher's statements on the ``messages`` outbox, each its own short transaction.

claim (pending and due, or claimed with an expired claim) -> start attempts (committed
before rendering, so a sender that dies while rendering still counts its attempt) -> mark
in flight (committed just before the provider call) -> finish (sent / failed /
suppressed / back to pending), with the ``message.sent`` / ``message.failed`` events,
suppressions and pruned push tokens written in the same transaction as the status. Every
write after the claim is conditional on still holding it (``claimed_by`` = this worker,
``status`` = claimed).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    and_,
    bindparam,
    case,
    or_,
    select,
    text,
    update,
)

from omni_journey.delivery.message_events import message_event
from omni_journey.delivery.outbox_rows import Finish, OutboxRow, Status
from omni_journey.identity.changes import forget_push_token
from omni_journey.reach.suppressions import suppress
from omni_journey.store.events import append_events
from omni_journey.store.ops import insert_ignore
from omni_journey.store.shards import ALL, Shard
from omni_journey.store.tables import Message

__all__ = [
    "Finish",
    "OutboxRow",
    "Status",
    "claim",
    "erase_customer_messages",
    "finish",
    "mark_in_flight",
    "release",
    "settle_row",
    "start_attempts",
]

log = logging.getLogger("omni_journey.delivery")

_MESSAGES: Table = Message.__table__  # type: ignore[attr-defined]
M = _MESSAGES.c
_CHUNK = 500  # ids per IN (...) list


def queue(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Queue new outbox rows (the runner's sends and webhooks). Unique by idempotency
    key: a row queued before (a redone batch, an overlapping pass) is left as it is."""
    if rows:
        connection.execute(insert_ignore(connection, _MESSAGES, "idempotency_key"), list(rows))


def claim(
    engine: Engine,
    *,
    worker_id: str,
    now: datetime,
    until: datetime,
    limit: int,
    shard: Shard = ALL,
) -> list[OutboxRow]:
    """Claim up to ``limit`` due rows for ``worker_id`` until ``until`` (only rows to
    ``shard``'s customers, when given), and commit.

    PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED``, so concurrent workers take
    disjoint rows. SQLite: the transaction begins IMMEDIATE (the store's engine does
    that), so claims are serialised.
    """
    due = or_(
        and_(M.status == "pending", M.send_after <= now),
        and_(M.status == "claimed", M.claimed_until < now),
    )
    if not shard.everyone:
        due = and_(due, text(shard.sql("messages.customer_id", engine.dialect.name)))
    with engine.begin() as connection:
        rows = connection.execute(
            select(_MESSAGES)
            .where(due)
            .order_by(M.send_after, M.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if not rows:
            return []
        ids = [row.id for row in rows]
        connection.execute(
            update(_MESSAGES)
            .where(M.id.in_(ids))
            .values(status="claimed", claimed_by=worker_id, claimed_until=until)
        )
    return [OutboxRow.of(row) for row in rows]


def start_attempts(engine: Engine, ids: Sequence[int], *, worker_id: str) -> None:
    """Count (and commit) one attempt for each held row of ``ids``, before rendering them.

    Counted before anything that may kill the process (a renderer, a provider call), so a
    message whose attempts keep dying reaches ``OMNI_DISPATCH_MAX_ATTEMPTS`` and is failed
    instead of being claimed again forever. Outcomes that were no attempt (suppressed, put
    back unsent, paused) take it back.
    """
    if not ids:
        return
    with engine.begin() as connection:
        for start in range(0, len(ids), _CHUNK):
            connection.execute(
                update(_MESSAGES)
                .where(_held(ids[start : start + _CHUNK], worker_id))
                .values(attempts=M.attempts + 1)
            )


def _held(ids: Sequence[int], worker_id: str) -> Any:
    return and_(M.id.in_(ids), M.claimed_by == worker_id, M.status == "claimed")


def mark_in_flight(
    engine: Engine, ids: Sequence[int], *, worker_id: str, at: datetime, count: bool = True
) -> set[int]:
    """Record (and commit) that a provider call for ``ids`` starts now; one attempt each,
    unless ``count`` is false (the dispatcher counted it before rendering, with
    :func:`start_attempts`).

    Returns the ids this worker still holds: only those may be sent.
    """
    if not ids:
        return set()
    held = _held(ids, worker_id)
    values: dict[str, Any] = {"in_flight_since": at}
    if count:
        values["attempts"] = M.attempts + 1
    with engine.begin() as connection:
        result = connection.execute(update(_MESSAGES).where(held).values(**values))
        if result.rowcount == len(ids):
            return set(ids)
        return set(connection.execute(select(M.id).where(held)).scalars())


def release(
    engine: Engine,
    ids: Sequence[int],
    *,
    worker_id: str,
    send_after: datetime | None = None,
    error: str | None = None,
) -> None:
    """Put held rows back to pending (optionally later) unsent: the attempt
    :func:`start_attempts` counted is taken back."""
    if not ids:
        return
    values: dict[str, Any] = {
        "attempts": M.attempts - 1,
        "status": "pending",
        "claimed_by": None,
        "claimed_until": None,
        "in_flight_since": None,
    }
    if send_after is not None:
        values["send_after"] = send_after
    if error is not None:
        values["error"] = error[:1024]
    with engine.begin() as connection:
        connection.execute(update(_MESSAGES).where(_held(ids, worker_id)).values(**values))


def _event(finish: Finish, name: str) -> dict[str, Any]:
    return message_event(
        finish.row,
        name,
        customer_id=finish.customer_id,
        at=finish.at,
        provider=finish.provider,
        provider_message_id=finish.provider_message_id,
        reason=finish.error_code,
        extra=finish.extra,
    )


def finish(engine: Engine, finishes: Sequence[Finish], *, worker_id: str) -> list[Finish]:
    """Write every outcome of one provider batch in one transaction.

    Returns the outcomes whose claim had been lost (another worker took the row over
    after this claim expired): those are logged, nothing else is written for them.
    """
    lost: list[Finish] = []
    if not finishes:
        return lost
    with engine.begin() as connection:
        events: list[dict[str, Any]] = []
        lost = _write_all(connection, finishes, worker_id)
        lost_ids = {item.row.id for item in lost}
        for item in finishes:
            if item.row.id in lost_ids:
                continue
            if item.suppress:
                suppress(connection, [item.suppress], item.at)
            if item.prune_push_token:
                forget_push_token(connection, item.prune_push_token)
            if item.event:
                events.append(_event(item, item.event))
        if events:
            append_events(connection, events)
    for item in lost:
        log.error(
            "claim lost before the result was written (%s status=%s provider_message_id=%s): "
            "another worker took it over; if both sent, the customer got it twice",
            item.row.describe(),
            item.status,
            item.provider_message_id,
        )
    return lost


def _write_all(connection: Connection, finishes: Sequence[Finish], worker_id: str) -> list[Finish]:
    """Write the outcomes whose claim this worker still holds; the others are lost.

    The rows still claimed by ``worker_id`` are read and locked first (SQLite holds the
    write lock from BEGIN; PostgreSQL: FOR UPDATE), then written with one executemany
    per shape of outcome instead of one UPDATE per message.
    """
    ids = [item.row.id for item in finishes]
    owned: set[int] = set()
    for start in range(0, len(ids), _CHUNK):
        owned.update(
            connection.execute(
                select(M.id)
                .where(
                    and_(
                        M.id.in_(ids[start : start + _CHUNK]),
                        M.claimed_by == worker_id,
                        M.status == "claimed",
                    )
                )
                .with_for_update()
            ).scalars()
        )
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for item in finishes:
        if item.row.id in owned:
            values = _values(item)
            shapes[tuple(sorted(values))].append(
                {"b_id": item.row.id, **{f"b_{k}": v for k, v in values.items()}}
            )
    for keys, rows in shapes.items():
        columns: dict[str, Any] = {
            key: M.attempts + bindparam("b_attempts")
            if key == "attempts"
            else bindparam(f"b_{key}")
            for key in keys
        }
        connection.execute(update(_MESSAGES).where(M.id == bindparam("b_id")).values(columns), rows)
    return [item for item in finishes if item.row.id not in owned]


def _values(item: Finish) -> dict[str, Any]:
    """The columns an outcome sets (``attempts``: the increment)."""
    values: dict[str, Any] = {
        "status": item.status,
        "claimed_by": None,
        "claimed_until": None,
        "error": item.error[:1024] if item.error else None,
    }
    if not item.keep_in_flight:
        values["in_flight_since"] = None
    if item.send_after is not None:
        values["send_after"] = item.send_after
    if item.attempts_delta:
        values["attempts"] = item.attempts_delta
    if item.provider:
        values["provider"] = item.provider
    if item.status == "sent":
        values["sent_at"] = item.at
        values["provider_message_id"] = item.provider_message_id
    return values


def settle_row(
    connection: Connection,
    message_id: int,
    outcome: str,
    *,
    at: datetime,
    provider: str,
    provider_message_id: str | None,
    reason: str | None = None,
) -> bool:
    """Settle one message in doubt (``in_flight_since`` set, claimed or failed) from the
    provider's feedback, in ``connection``'s transaction: ``sent`` or ``failed`` with
    ``reason``. False when the row is not in doubt (nothing changes)."""
    values: dict[str, Any] = {
        "status": outcome,
        "claimed_by": None,
        "claimed_until": None,
        "in_flight_since": None,
        "provider": provider,
    }
    if outcome == "sent":
        values |= {"sent_at": at, "provider_message_id": provider_message_id, "error": None}
    else:
        values["error"] = f"{provider}: {reason or 'failed'}"[:1024]
    in_doubt = and_(
        M.id == message_id, M.in_flight_since.is_not(None), M.status.in_(("claimed", "failed"))
    )
    return bool(connection.execute(update(_MESSAGES).where(in_doubt).values(**values)).rowcount)


def erase_customer_messages(connection: Connection, tombstones: dict[str, str]) -> tuple[int, int]:
    """Erased customers' outbox rows (``tombstones``: id -> opaque id): the ones not yet
    handed to a provider are cancelled (status ``cancelled``, error ``erased``); every
    row moves to the opaque id without its render context or error text (status,
    channel, journey, step and decision stay for the reports). (cancelled, rows)."""
    pairs = [{"b_from": old, "b_to": new} for old, new in sorted(tombstones.items())]
    waiting = or_(M.status == "pending", and_(M.status == "claimed", M.in_flight_since.is_(None)))
    mine = M.customer_id == bindparam("b_from")
    cancelled = connection.execute(
        update(_MESSAGES).where(and_(mine, waiting)).values(
            status="cancelled", error="erased", claimed_by=None, claimed_until=None),
        pairs,
    ).rowcount  # fmt: skip
    redacted = case((M.error.is_(None), None), (M.error == "erased", "erased"), else_="redacted")
    moved = connection.execute(
        update(_MESSAGES).where(mine).values(
            customer_id=bindparam("b_to"), render_context={}, error=redacted),
        pairs,
    ).rowcount  # fmt: skip
    return int(cancelled or 0), int(moved or 0)
