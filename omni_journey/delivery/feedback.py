"""Delivery feedback: SES event publishing (and two-way SMS) through SNS -> events and
suppressions.

:func:`handle_sns_notification` takes one SNS HTTP(S) POST body, checks its topic
(``OMNI_FEEDBACK_TOPIC_ARNS``) before it verifies its signature, and applies it in one
transaction:

| SES event | event written | suppression |
|---|---|---|
| Send | (none) | |
| Delivery | ``message.delivered`` | |
| Bounce | ``message.bounced`` | Permanent bounces: each bounced address (``hard_bounce``) |
| Complaint | ``message.complained`` | each complaining address (``complaint``) |
| Open / Click | ``message.opened`` / ``message.clicked`` | |
| Reject | ``message.failed`` | |
| Subscription (unsubscribe) | ``message.unsubscribed`` | the address (``unsubscribe``) |

Event ids are ``<name>:sns:<SNS MessageId>``, so SNS's redeliveries are stored once.
The outbox row is found by SES message id, or by the ``omni_message`` email tag. A row
in doubt (its sender died during the SES call: :mod:`.in_doubt`) is settled here: Send or
Delivery -> ``sent`` (with ``message.sent``), a permanent bounce or a reject -> ``failed``.
Inbound messages (a customer writing back; shapes in :mod:`.inbound`) become
``message.replied`` events on the sender's owner (:mod:`.replies`): an SMS from two-way
SMS, WhatsApp messages from End User Messaging Social's event destination (its status
updates change nothing), an email from an SES receipt rule's SNS action
(``notificationType: Received``). An inbound SMS's STOP / START keywords are applied
too, in the same transaction (:func:`.optout.apply_inbound_sms`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, select

from omni_journey.delivery.base import FeedbackError
from omni_journey.delivery.in_doubt import settle_in_doubt
from omni_journey.delivery.inbound import (
    InboundMessage,
    Skipped,
    is_inbound_email,
    is_inbound_sms,
    is_inbound_whatsapp,
    parse_email,
    parse_sms,
    parse_whatsapp,
)
from omni_journey.delivery.optout import apply_inbound_sms
from omni_journey.delivery.replies import record_replies
from omni_journey.delivery.sns_signature import SnsSignatureVerifier
from omni_journey.reach.suppressions import suppress as suppress_addresses
from omni_journey.store.events import append_new_events
from omni_journey.store.tables import Message

__all__ = ["FeedbackResult", "handle_sns_notification"]

_MESSAGES: Table = Message.__table__  # type: ignore[attr-defined]

SES_EVENTS = {
    "Delivery": "message.delivered",
    "Bounce": "message.bounced",
    "Complaint": "message.complained",
    "Open": "message.opened",
    "Click": "message.clicked",
    "Reject": "message.failed",
    "Subscription": "message.unsubscribed",
}


@dataclass
class FeedbackResult:
    """``kind``: subscription (confirm by GET-ting ``subscribe_url``), ses, ignored, or
    the channel of an inbound message (sms, whatsapp, email). For those, ``replied`` new
    ``message.replied`` events (also in ``events``), ``duplicates`` seen before, and
    ``ignored`` reasons (``unknown_address``, ...) with their counts."""

    kind: str
    subscribe_url: str | None = None
    events: int = 0
    suppressed: int = 0
    resubscribed: int = 0
    unmatched: int = 0
    replied: int = 0
    duplicates: int = 0
    ignored: dict[str, int] = field(default_factory=dict)


def _parse(body: Mapping[str, Any] | str | bytes) -> Mapping[str, Any]:
    if isinstance(body, Mapping):
        return body
    try:
        parsed = json.loads(body)
    except ValueError:
        raise FeedbackError("bad_json") from None
    if not isinstance(parsed, dict):
        raise FeedbackError("bad_json", "not an object")
    return parsed


def handle_sns_notification(
    engine: Engine,
    body: Mapping[str, Any] | str | bytes,
    *,
    now: datetime,
    verifier: SnsSignatureVerifier,
    accepted_topics: Collection[str],
) -> FeedbackResult:
    """Check the topic, verify the signature, and apply one SNS message. Raises
    :class:`FeedbackError` (with a stable ``reason``) for an unaccepted topic (before
    any signature check), a bad signature or a malformed body."""
    envelope = _parse(body)
    # the topic first: a body from a topic we do not accept costs no certificate fetch
    # and no signature check (the collector checks it first too)
    topic = str(envelope.get("TopicArn", ""))
    if topic not in accepted_topics:
        raise FeedbackError("topic_not_accepted", "set OMNI_FEEDBACK_TOPIC_ARNS")
    verifier.verify(envelope)
    kind = envelope.get("Type")
    if kind == "SubscriptionConfirmation":
        return FeedbackResult("subscription", subscribe_url=str(envelope.get("SubscribeURL")))
    if kind != "Notification":
        return FeedbackResult("ignored")
    message = _parse(str(envelope.get("Message", "")))
    sns_id = str(envelope.get("MessageId", ""))
    if is_inbound_email(message):
        return _apply_inbound(engine, "email", [parse_email(message, sns_id)], now)
    if "eventType" in message or "notificationType" in message:
        with engine.begin() as connection:
            return _apply_ses(connection, message, sns_id, now)
    if is_inbound_whatsapp(message):
        return _apply_inbound(engine, "whatsapp", parse_whatsapp(message, sns_id), now)
    if is_inbound_sms(message):
        sms = parse_sms(message, sns_id)
        return _apply_inbound(engine, "sms", [sms], now, keywords=message, sns_id=sns_id)
    return FeedbackResult("ignored")


def _apply_inbound(
    engine: Engine,
    channel: str,
    inbound: Sequence[InboundMessage | Skipped],
    now: datetime,
    *,
    keywords: Mapping[str, Any] | None = None,
    sns_id: str = "",
) -> FeedbackResult:
    """Record the replies (and, for an SMS, apply its keyword) in one transaction."""
    result = FeedbackResult(channel)
    extra: dict[str, Any] = {}
    with engine.begin() as connection:
        if keywords is not None:  # an SMS: STOP / START work exactly as they always have
            outcome = apply_inbound_sms(
                connection,
                phone=str(keywords["originationNumber"]),
                text=str(keywords["messageBody"]),
                now=now,
                inbound_id=str(keywords.get("inboundMessageId") or sns_id),
            )
            result.suppressed = int(outcome == "opted_out")
            result.resubscribed = int(outcome == "opted_in")
            if outcome is not None:
                extra["keyword"] = "opt_out" if outcome == "opted_out" else "opt_in"
        report = record_replies(connection, inbound, now=now, extra=extra)
    result.events = result.replied = report.recorded
    result.duplicates = report.duplicates
    result.ignored = dict(sorted(report.ignored.items()))
    return result


def _find_row(connection: Connection, mail: Mapping[str, Any]) -> Any:
    ses_id = str(mail.get("messageId", ""))
    row = connection.execute(
        select(_MESSAGES).where(
            and_(_MESSAGES.c.provider == "ses", _MESSAGES.c.provider_message_id == ses_id)
        )
    ).first()
    if row is not None:
        return row
    tag = (mail.get("tags") or {}).get("omni_message") or []
    if tag and str(tag[0]).isdigit():
        return connection.execute(select(_MESSAGES).where(_MESSAGES.c.id == int(tag[0]))).first()
    return None


def _apply_ses(
    connection: Connection, message: Mapping[str, Any], sns_id: str, now: datetime
) -> FeedbackResult:
    ses_type = str(message.get("eventType") or message.get("notificationType"))
    mail = message.get("mail") or {}
    result = FeedbackResult("ses")
    suppress: list[tuple[str, str]] = []
    details: dict[str, Any] = {}
    if ses_type == "Bounce":
        bounce = message.get("bounce") or {}
        details = {
            "bounce_type": bounce.get("bounceType"),
            "bounce_subtype": bounce.get("bounceSubType"),
        }
        if bounce.get("bounceType") == "Permanent":
            suppress = [
                (r["emailAddress"], "hard_bounce") for r in bounce.get("bouncedRecipients", [])
            ]
    elif ses_type == "Complaint":
        complaint = message.get("complaint") or {}
        details = {"feedback_type": complaint.get("complaintFeedbackType")}
        suppress = [
            (r["emailAddress"], "complaint") for r in complaint.get("complainedRecipients", [])
        ]
    elif ses_type == "Click":
        details = {"link": (message.get("click") or {}).get("link")}
    elif ses_type == "Subscription":
        suppress = [(str(a), "unsubscribe") for a in mail.get("destination", [])]
    elif ses_type == "Reject":
        details = {"reason": (message.get("reject") or {}).get("reason")}
    if suppress:
        result.suppressed = suppress_addresses(
            connection, [("email", a, r) for a, r in suppress], now
        )
    name = SES_EVENTS.get(ses_type)
    if name is None and ses_type != "Send":
        return result
    row = _find_row(connection, mail)
    if row is None:
        result.unmatched = 1
        return result
    _settle(connection, row, ses_type, mail, details, now)
    if name is None:
        return result
    properties = {
        "message_id": row.id,
        "idempotency_key": row.idempotency_key,
        "channel": row.channel,
        "message": row.message_key,
        "journey": row.journey_key,
        "step": row.step_id,
        "provider": "ses",
        "provider_message_id": mail.get("messageId"),
        **{k: v for k, v in details.items() if v is not None},
    }
    event = {
        "event_id": f"{name}:sns:{sns_id}",
        "name": name,
        "customer_id": row.customer_id,
        "at": now,
        "received_at": now,
        "properties": properties,
    }
    result.events = len(append_new_events(connection, [event]))
    return result


def _settle(
    connection: Connection,
    row: Any,
    ses_type: str,
    mail: Mapping[str, Any],
    details: Mapping[str, Any],
    now: datetime,
) -> None:
    """SES's word on a row in doubt settles it (see :mod:`.in_doubt`)."""
    if row.in_flight_since is None:
        return
    ses_id = str(mail.get("messageId") or "") or None
    if ses_type in ("Send", "Delivery"):
        settle_in_doubt(connection, row, "sent", at=now, provider="ses", provider_message_id=ses_id)
    elif (ses_type == "Bounce" and details.get("bounce_type") == "Permanent") or (
        ses_type == "Reject"
    ):
        reason = "bounced" if ses_type == "Bounce" else "rejected"
        settle_in_doubt(
            connection, row, "failed", at=now, provider="ses", provider_message_id=ses_id,
            reason=reason,
        )  # fmt: skip
