"""Inbound messages (a customer writing back) read from the SNS notifications AWS
publishes for them: pure parsing, no store.

Three sources, each in the shape AWS documents (the examples these parsers were
written against and are tested with):

- **SMS** — AWS End User Messaging SMS two-way messaging to an SNS topic
  (https://docs.aws.amazon.com/sms-voice/latest/userguide/two-way-sms-payload.html)::

      {"originationNumber": "+14255550182", "destinationNumber": "+12125550101",
       "messageKeyword": "JOIN", "messageBody": "EXAMPLE",
       "inboundMessageId": "cae173d2-66b9-564c-8309-21f858e9fb84",
       "previousPublishedMessageId": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}

  ``previousPublishedMessageId`` is the id the send returned for the message answered.

- **WhatsApp** — AWS End User Messaging Social's event destination (an SNS topic)
  (https://docs.aws.amazon.com/social-messaging/latest/userguide/managing-event-destination-dlrs.html)::

      {"context": {"MetaWabaIds": [...], "MetaPhoneNumberIds": [...]},
       "whatsAppWebhookEntry": "{\\"id\\": \\"365731266123456\\", \\"changes\\": [...]}",
       "aws_account_id": "123456789012", "message_timestamp": "2025-01-08T23:30:43Z",
       "messageId": "6d69f07a-c317-4278-9d5c-6a84078419ec"}

  ``whatsAppWebhookEntry`` is a JSON string holding one entry of Meta's webhook
  (https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components):
  ``changes[].value.messages[]`` with ``from`` (the sender's WhatsApp id: the number
  without ``+``), ``id`` (``wamid.…``), ``timestamp`` (Unix seconds), ``type``,
  ``text.body`` and, for a reply to one of ours, ``context.id`` (the id of the message
  answered). Status updates (``value.statuses[]``) come on the same topic and carry no
  messages: they are accepted and change nothing here.

- **Email** — an Amazon SES receipt rule's SNS action
  (https://docs.aws.amazon.com/ses/latest/dg/receiving-email-notifications-examples.html,
  fields in .../receiving-email-notifications-contents.html)::

      {"notificationType": "Received",
       "receipt": {"spfVerdict": {"status": "PASS"}, "dkimVerdict": {"status": "PASS"},
                   "spamVerdict": {...}, "virusVerdict": {...},
                   "action": {"type": "SNS", "topicArn": "...", "encoding": "UTF8"}},
       "mail": {"messageId": "d6iitobk75ur44p8kdnnp7g2n800", "timestamp": "...",
                "headers": [{"name": "In-Reply-To", "value": "<...>"}, ...],
                "commonHeaders": {"from": ["Ana <ana@example.com>"], ...}},
       "content": "<the whole MIME message; base64 when the action's encoding is BASE64>"}

  The reply is matched by our Message-ID in ``In-Reply-To`` / ``References``. SES
  replaces the Message-ID we set with ``<SES message id@<region>.amazonses.com>``
  (https://docs.aws.amazon.com/ses/latest/dg/header-fields.html), so both that form
  and our own ``<omni-<outbox id>.<hash>@<domain>>`` (file outbox, other relays) count.

A notification that is not of its source's shape raises :class:`FeedbackError`
(``bad_inbound``: the collector answers 400). One that is well formed but cannot
become a reply (an invalid sender address, an email that failed SPF and DKIM, an
automatic reply) is a :class:`Skipped` with a reason.
"""

from __future__ import annotations

import base64
import binascii
import email
import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any

from omni_journey.delivery.base import FeedbackError
from omni_journey.errors import IngestError
from omni_journey.identity.keys import normalize_email, normalize_phone

__all__ = [
    "MAX_TEXT",
    "InboundMessage",
    "Skipped",
    "is_inbound_email",
    "is_inbound_sms",
    "is_inbound_whatsapp",
    "message_ids",
    "parse_email",
    "parse_sms",
    "parse_whatsapp",
]

#: Reply text kept, in characters (longer texts are cut and marked ``text_truncated``).
MAX_TEXT = 4000
_MESSAGE_IDS = re.compile(r"<([^<>\s]+)>")
_QUOTE_START = re.compile(r"^(>|On .{4,200} wrote:\s*$|-{2,}\s*Original Message\s*-{2,})")
_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True)
class InboundMessage:
    """One message a customer sent us, before it is matched to anyone."""

    channel: str  # sms | whatsapp | email
    address: str  # the sender: E.164 for sms and whatsapp, a normalised email address
    text: str
    inbound_id: str  # the provider's id of this inbound message
    at: datetime | None  # when the provider says it was sent, if it says
    answers: tuple[str, ...] = ()  # the provider ids / Message-IDs it answers, best first
    detail: Mapping[str, Any] = field(default_factory=dict)  # extra event properties


@dataclass(frozen=True)
class Skipped:
    """A well-formed notification that records no reply, and why (a stable code)."""

    reason: str


def _object(value: object, what: str) -> Mapping[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise FeedbackError("bad_inbound", f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise FeedbackError("bad_inbound", f"{what} is not an object")
    return value


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: str) -> tuple[str, dict[str, Any]]:
    """The reply text as stored: storable Unicode (no NUL, no lone surrogates, which
    PostgreSQL refuses), stripped, at most :data:`MAX_TEXT` characters."""
    text = value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8").strip()
    if len(text) <= MAX_TEXT:
        return text, {}
    return text[:MAX_TEXT], {"text_truncated": True}


# --- shapes (checked by the collector before any signature check) -----------------------


def is_inbound_sms(message: Mapping[str, Any]) -> bool:
    return isinstance(message.get("originationNumber"), str) and isinstance(
        message.get("messageBody"), str
    )


def is_inbound_whatsapp(message: Mapping[str, Any]) -> bool:
    return isinstance(message.get("whatsAppWebhookEntry"), str | dict)


def is_inbound_email(message: Mapping[str, Any]) -> bool:
    return message.get("notificationType") == "Received" and isinstance(message.get("mail"), dict)


# --- SMS ---------------------------------------------------------------------------------


def parse_sms(message: Mapping[str, Any], sns_id: str) -> InboundMessage | Skipped:
    """A two-way SMS notification (see the module)."""
    if not is_inbound_sms(message):
        raise FeedbackError("bad_inbound", "expected originationNumber and messageBody")
    try:
        phone = normalize_phone(message["originationNumber"], "ZZ")
    except IngestError:
        return Skipped("invalid_address")
    text, detail = _text(str(message["messageBody"]))
    answered = message.get("previousPublishedMessageId")
    return InboundMessage(
        channel="sms",
        address=phone,
        text=text,
        inbound_id=str(message.get("inboundMessageId") or sns_id),
        at=None,
        answers=(answered,) if isinstance(answered, str) and answered else (),
        detail=detail,
    )


# --- WhatsApp ----------------------------------------------------------------------------


def _changes(entry: Mapping[str, Any]) -> list[Any]:
    """``changes`` of one webhook entry; a whole webhook body (``entry: [...]``) too."""
    if isinstance(entry.get("entry"), list):
        return [c for e in entry["entry"] if isinstance(e, dict) for c in e.get("changes") or []]
    changes = entry.get("changes")
    if not isinstance(changes, list):
        raise FeedbackError("bad_inbound", "whatsAppWebhookEntry has no changes")
    return changes


def _whatsapp_text(item: Mapping[str, Any]) -> str:
    kind = str(item.get("type") or "")
    body = _dict(item.get(kind))
    if kind == "text":
        return str(body.get("body") or "")
    if kind == "button":
        return str(body.get("text") or "")
    if kind == "interactive":
        chosen = _dict(body.get("button_reply") or body.get("list_reply"))
        return str(chosen.get("title") or "")
    return str(body.get("caption") or "")  # image, video, document: the caption, if any


def _unix(value: object) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(str(value)), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def parse_whatsapp(message: Mapping[str, Any], sns_id: str) -> list[InboundMessage | Skipped]:
    """Every customer message in one WhatsApp event (none for a status update)."""
    if not is_inbound_whatsapp(message):
        raise FeedbackError("bad_inbound", "expected whatsAppWebhookEntry")
    entry = _object(message["whatsAppWebhookEntry"], "whatsAppWebhookEntry")
    found: list[InboundMessage | Skipped] = []
    for change in _changes(entry):
        value = change.get("value") if isinstance(change, dict) else None
        items = value.get("messages") if isinstance(value, dict) else None
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict) or not item.get("id") or not item.get("from"):
                raise FeedbackError("bad_inbound", "a WhatsApp message without id or from")
            try:
                phone = normalize_phone("+" + str(item["from"]).lstrip("+"), "ZZ")
            except IngestError:
                found.append(Skipped("invalid_address"))
                continue
            context = _dict(item.get("context"))
            text, detail = _text(_whatsapp_text(item))
            kind = str(item.get("type") or "")
            if kind != "text":
                detail = {**detail, "message_type": kind[:32]}
            found.append(
                InboundMessage(
                    channel="whatsapp",
                    address=phone,
                    text=text,
                    inbound_id=str(item["id"]),
                    at=_unix(item.get("timestamp")),
                    answers=(str(context["id"]),) if context.get("id") else (),
                    detail=detail,
                )
            )
    return found


# --- email -------------------------------------------------------------------------------


def _headers(mail: Mapping[str, Any]) -> dict[str, str]:
    """``mail.headers`` by lower-cased name (the last of repeated names wins)."""
    headers = mail.get("headers")
    return {
        str(h["name"]).lower(): str(h.get("value") or "")
        for h in (headers if isinstance(headers, list) else [])
        if isinstance(h, dict) and "name" in h
    }


def _verdict(receipt: Mapping[str, Any], name: str) -> str:
    verdict = receipt.get(name)
    return str(verdict.get("status") or "").upper() if isinstance(verdict, dict) else ""


def _sender(mail: Mapping[str, Any], headers: Mapping[str, str]) -> str | None:
    common = _dict(mail.get("commonHeaders"))
    listed = common.get("from")
    senders = listed if isinstance(listed, list) else [headers.get("from")]
    for _name, address in getaddresses([str(s) for s in senders if s]):
        try:
            return normalize_email(address)
        except IngestError:
            continue
    return None


def _body_text(message: Mapping[str, Any], receipt: Mapping[str, Any]) -> str:
    """The plain text of the reply, without the quoted history below it."""
    content = message.get("content")
    if not isinstance(content, str) or not content:
        return ""  # an alert notification (S3, Lambda actions) carries no content
    action = _dict(receipt.get("action"))
    if str(action.get("encoding") or "").upper() == "BASE64":
        try:
            raw = base64.b64decode(content, validate=False)
        except (binascii.Error, ValueError):
            raise FeedbackError("bad_inbound", "content is not base64") from None
    else:
        raw = content.encode("utf-8", "surrogateescape")
    parsed = email.message_from_bytes(raw, policy=policy.default)
    if not isinstance(parsed, EmailMessage):  # pragma: no cover - policy.default makes one
        return ""
    part = parsed.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        text = str(part.get_content())
    except (LookupError, ValueError, AssertionError):
        payload = part.get_payload(decode=True)
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    if part.get_content_subtype() == "html":
        text = html.unescape(_TAG.sub(" ", text))
    kept: list[str] = []
    for line in text.splitlines():
        if _QUOTE_START.match(line.strip()):
            break
        kept.append(line)
    return "\n".join(kept)


def _iso(value: object) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def message_ids(value: str) -> list[str]:
    """The ``<id>`` tokens of an In-Reply-To or References header, in order."""
    return _MESSAGE_IDS.findall(value)


def parse_email(message: Mapping[str, Any], sns_id: str) -> InboundMessage | Skipped:
    """An SES receipt notification (see the module)."""
    if not is_inbound_email(message):
        raise FeedbackError("bad_inbound", 'expected notificationType "Received" and mail')
    mail: Mapping[str, Any] = message["mail"]
    receipt = _dict(message.get("receipt"))
    headers = _headers(mail)
    if "FAIL" in (_verdict(receipt, "spamVerdict"), _verdict(receipt, "virusVerdict")):
        return Skipped("spam_or_virus")
    if "PASS" not in (_verdict(receipt, "spfVerdict"), _verdict(receipt, "dkimVerdict")):
        return Skipped("sender_not_authenticated")  # a From header anyone could have written
    if headers.get("auto-submitted", "no").strip().lower() != "no":
        return Skipped("automatic_reply")  # RFC 3834: out-of-office and other robots
    sender = _sender(mail, headers)
    if sender is None:
        return Skipped("invalid_address")
    # the most specific first: In-Reply-To, then References from the newest back
    answers: Sequence[str] = [
        *message_ids(headers.get("in-reply-to", "")),
        *reversed(message_ids(headers.get("references", ""))),
    ]
    text, detail = _text(_body_text(message, receipt))
    return InboundMessage(
        channel="email",
        address=sender,
        text=text,
        inbound_id=str(mail.get("messageId") or sns_id),
        at=_iso(mail.get("timestamp")),
        answers=tuple(dict.fromkeys(answers)),
        detail=detail,
    )
