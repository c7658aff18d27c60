"""Inbound messages join the customer's history as ``message.replied`` events.

:func:`record_replies` takes parsed :class:`~omni_journey.delivery.inbound.InboundMessage`
s and, in the caller's transaction, writes one ``message.replied`` event for each
(through :mod:`omni_journey.store.events`, the table's one writer) on the customer who
owns the sender's address:

- **Who.** The ``identities`` row of the phone number (SMS, WhatsApp) or email address
  (as written, then with its local part in lower case), else the live profile that
  carries it, followed through merges to the survivor. An
  address nobody owns records nothing: it is counted as ignored (``unknown_address``).
- **Which message it answers** (``in_reply_to``: our outbox id), only ever one of the
  owner's own messages on that channel: the provider id the inbound names (SMS
  ``previousPublishedMessageId``, WhatsApp ``context.id``) against the
  ``provider_message_id`` the dispatcher stored; for email our Message-ID in
  ``In-Reply-To`` / ``References`` (SES's ``<id@…amazonses.com>`` or our
  ``<omni-<id>.<hash>@…>``, the hash checked). SMS and WhatsApp fall back to the last
  message sent on that channel to the owner before the reply (``matched_by: last_sent``);
  email does not guess.
- **Once.** The event id is ``message.replied:<channel>:<provider's inbound id>``, so a
  notification SNS delivers again stores nothing twice.

The reply text is personal data: it is kept under ``text`` (and nowhere else), where
erasure finds it.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select

from omni_journey.delivery.inbound import InboundMessage, Skipped
from omni_journey.identity.lookup import lookup_values
from omni_journey.identity.survivors import follow_merges
from omni_journey.store.core import CUSTOMERS, MESSAGES
from omni_journey.store.events import append_new_events

__all__ = ["REPLIED", "ReplyReport", "record_replies", "reply_event_id"]

REPLIED = "message.replied"
_OURS = re.compile(r"^omni-([0-9]{1,18})\.([0-9a-f]{20})@")
_SES = re.compile(r"^([^@]+)@(?:[a-z0-9-]+\.)*amazonses\.com$", re.IGNORECASE)
_ID_MAX = 255


@dataclass
class ReplyReport:
    """What a batch of inbound messages became."""

    recorded: int = 0  # new message.replied events
    duplicates: int = 0  # seen before (SNS delivered the notification again)
    ignored: Counter[str] = field(default_factory=Counter)  # reason -> count


def reply_event_id(channel: str, inbound_id: str) -> str:
    """``message.replied:<channel>:<inbound id>`` (hashed if it would not fit the column)."""
    event_id = f"{REPLIED}:{channel}:{inbound_id}"
    if len(event_id) <= _ID_MAX:
        return event_id
    return f"{REPLIED}:{channel}:sha256:{hashlib.sha256(inbound_id.encode()).hexdigest()}"


def record_replies(
    connection: Connection,
    inbound: Sequence[InboundMessage | Skipped],
    *,
    now: datetime,
    extra: Mapping[str, Any] | None = None,
) -> ReplyReport:
    """Write one ``message.replied`` per inbound message whose sender is a customer.

    ``extra`` properties go on every event (the SMS keyword a message was). A message's
    ``at`` is when the provider says it was sent (never later than ``now``), else ``now``.
    """
    report = ReplyReport()
    events: list[dict[str, Any]] = []
    for item in inbound:
        if isinstance(item, Skipped):
            report.ignored[item.reason] += 1
            continue
        owner = _owner(connection, item.channel, item.address)
        if owner is None:
            report.ignored["unknown_address"] += 1
            continue
        at = min(item.at, now) if item.at is not None else now
        properties: dict[str, Any] = {
            "channel": item.channel,
            "text": item.text,
            "inbound_id": item.inbound_id,
            "in_reply_to": None,
            **_answered(connection, owner, item, at),
            **item.detail,
            **(extra or {}),
        }
        events.append(
            {
                "event_id": reply_event_id(item.channel, item.inbound_id),
                "name": REPLIED,
                "customer_id": owner,
                "at": at,
                "received_at": now,
                "properties": properties,
            }
        )
    unique = list({e["event_id"]: e for e in events}.values())
    report.recorded = len(append_new_events(connection, unique))
    report.duplicates = len(events) - report.recorded
    return report


def _owner(connection: Connection, channel: str, address: str) -> str | None:
    """The live customer who owns ``address`` (an identity first, else a profile)."""
    kind = "email" if channel == "email" else "phone"
    # mail clients write the local part as the person typed it: "Ana@" is "ana@" too
    spellings = list(dict.fromkeys([address, address.lower()] if kind == "email" else [address]))
    owners = lookup_values(connection, kind, spellings)
    candidates = [owners[s] for s in spellings if s in owners]
    if not candidates:
        column = CUSTOMERS.c.email if kind == "email" else CUSTOMERS.c.phone
        candidates = [
            str(c)
            for c in connection.execute(
                select(CUSTOMERS.c.id)
                .where(and_(column.in_(spellings), CUSTOMERS.c.merged_into.is_(None)))
                .order_by(CUSTOMERS.c.id)
            ).scalars()
        ]
    survivors = follow_merges(connection, candidates)
    for candidate in candidates:  # the identity's owner, else the first profile by id
        if candidate in survivors:
            return str(survivors[candidate].id)
    return None


def _answered(
    connection: Connection, owner: str, item: InboundMessage, at: datetime
) -> dict[str, Any]:
    """``in_reply_to`` and how it was found, with the message's journey, step and key."""
    row, matched_by = None, None
    mine = and_(MESSAGES.c.customer_id == owner, MESSAGES.c.channel == item.channel)
    if item.channel == "email":
        row = _by_message_id(connection, mine, item.answers)
        matched_by = "message_id_header"
    elif item.answers:
        row = connection.execute(
            select(MESSAGES)
            .where(and_(mine, MESSAGES.c.provider_message_id.in_(item.answers)))
            .order_by(MESSAGES.c.id.desc())
            .limit(1)
        ).first()
        matched_by = "provider_message_id"
    if row is None and item.channel != "email":
        row = connection.execute(
            select(MESSAGES)
            .where(and_(mine, MESSAGES.c.status == "sent", MESSAGES.c.sent_at <= at))
            .order_by(MESSAGES.c.sent_at.desc(), MESSAGES.c.id.desc())
            .limit(1)
        ).first()
        matched_by = "last_sent"
    if row is None:
        return {}
    return {
        "in_reply_to": row.id,
        "matched_by": matched_by,
        "message": row.message_key,
        "journey": row.journey_key,
        "step": row.step_id,
    }


def _by_message_id(connection: Connection, mine: Any, answers: Sequence[str]) -> Any:
    """The first of ``answers`` (Message-IDs, best first) that names one of our emails."""
    for message_id in answers:
        ours = _OURS.match(message_id)
        ses = _SES.match(message_id)
        if ours:
            row = connection.execute(
                select(MESSAGES).where(and_(mine, MESSAGES.c.id == int(ours.group(1))))
            ).first()
            digest = hashlib.sha256(str(row.idempotency_key).encode()).hexdigest() if row else ""
            if row is not None and digest[:20] == ours.group(2):
                return row
        elif ses:
            row = connection.execute(
                select(MESSAGES)
                .where(and_(mine, MESSAGES.c.provider_message_id == ses.group(1)))
                .limit(1)
            ).first()
            if row is not None:
                return row
    return None
