"""SNS HTTP(S) subscriptions: SES event publishing (``/feedback/ses``) and customers
writing back (``/inbound/sms``: two-way SMS, ``/inbound/whatsapp``: End User Messaging
Social's event destination, ``/inbound/email``: an SES receipt rule's SNS action), each
recorded as ``message.replied`` (:mod:`omni_journey.delivery.replies`).

An inbound path takes only notifications of its own shape (checked before anything else
is done with them: a wrong one is a 400 with a reason, ``not-inbound-<source>``);
subscription (un)confirmations are handled the same on every path.

The SNS signature is the authentication (no write key), checked by
:func:`omni_journey.delivery.feedback.handle_sns_notification` once the topic is known
to be one of ``OMNI_FEEDBACK_TOPIC_ARNS`` (checked here first, so a message from any
other topic never makes the collector fetch a signing certificate). A subscription is
confirmed only through a ``SubscribeURL`` that is https on an SNS host, so a forged
confirmation cannot make the collector fetch an arbitrary URL.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import orjson
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from omni_journey.collector.refusals import RequestRefused
from omni_journey.collector.request_body import parse_object, read_body
from omni_journey.delivery import FeedbackError
from omni_journey.delivery.feedback import FeedbackResult, handle_sns_notification
from omni_journey.delivery.inbound import (
    is_inbound_email,
    is_inbound_sms,
    is_inbound_whatsapp,
)
from omni_journey.delivery.replies import REPLIED
from omni_journey.delivery.sns_signature import SnsSignatureVerifier
from omni_journey.errors import StoreError
from omni_journey.ingest.announce import IngestedBuffer
from omni_journey.settings import Settings

__all__ = ["INBOUND_SOURCES", "SnsSource", "confirm_sns_subscription", "handle_sns"]

SnsSource = Literal["ses", "sms", "whatsapp", "email"]
INBOUND_SOURCES: tuple[SnsSource, ...] = ("sms", "whatsapp", "email")

_log = logging.getLogger("omni_journey.collector.app")
_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
# FeedbackError reasons -> status: a forgery or a foreign topic is 403; a certificate
# we could not fetch is our problem (503: SNS retries); anything else is a bad body.
_FEEDBACK_STATUS: Mapping[str, int] = {
    "bad_signature": 403,
    "untrusted_certificate_url": 403,
    "topic_not_accepted": 403,
    "certificate_unavailable": 503,
}


def confirm_sns_subscription(url: str) -> None:
    """GET an SNS ``SubscribeURL`` (already checked to be https on an SNS host)."""
    response = httpx.get(url, timeout=10.0, follow_redirects=False)
    response.raise_for_status()


def _is_sns_url(url: object) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(_SNS_HOST.match(parts.hostname or ""))


_SHAPES: Mapping[str, Callable[[Mapping[str, Any]], bool]] = {
    "sms": is_inbound_sms,
    "whatsapp": is_inbound_whatsapp,
    "email": is_inbound_email,
}
_EXPECTED: Mapping[str, str] = {
    "sms": "an SNS notification of an inbound SMS (originationNumber, messageBody)",
    "whatsapp": "an SNS notification of a WhatsApp event (whatsAppWebhookEntry)",
    "email": 'an SNS notification of a received email (notificationType "Received")',
}


def _has_shape(envelope: Mapping[str, Any], source: str) -> bool:
    """Whether a Notification carries what ``source`` takes (checked before anything is
    stored, so an inbound path never applies SES events; the signature is checked
    afterwards)."""
    if envelope.get("Type") != "Notification":
        return True  # subscription (un)confirmations are handled the same on every path
    try:
        message = orjson.loads(str(envelope.get("Message", "")))
    except orjson.JSONDecodeError:
        return False
    return isinstance(message, dict) and _SHAPES[source](message)


async def handle_sns(
    request: Request,
    source: SnsSource,
    engine: Engine,
    settings: Settings,
    clock: Callable[[], datetime],
    verifier: SnsSignatureVerifier,
    confirm: Callable[[str], None],
    announcer: IngestedBuffer | None = None,
) -> Response:
    """One SNS message: verified, applied, and (a subscription) confirmed; the
    ``message.replied`` events an inbound message recorded are announced through
    ``announcer`` like any collected event."""
    envelope = parse_object(await read_body(request, settings.max_body_bytes))
    # The topic first: a message from a topic we do not take never makes us fetch a
    # signing certificate (an attacker could otherwise have us fetch on every POST).
    topic = envelope.get("TopicArn")
    if not isinstance(topic, str) or topic not in settings.accepted_feedback_topics:
        raise RequestRefused(403, "topic-not-accepted", "the SNS message was refused")
    if source in _SHAPES and not _has_shape(envelope, source):
        raise RequestRefused(400, f"not-inbound-{source}", f"expected {_EXPECTED[source]}")
    try:
        result: FeedbackResult = await run_in_threadpool(
            handle_sns_notification,
            engine,
            envelope,
            now=clock(),
            verifier=verifier,
            accepted_topics=settings.accepted_feedback_topics,
        )
    except FeedbackError as error:
        status = _FEEDBACK_STATUS.get(error.reason, 400)
        reason = error.reason.replace("_", "-")
        raise RequestRefused(status, reason, "the SNS message was refused") from None
    except (SQLAlchemyError, StoreError) as error:
        _log.error("store unavailable for sns %s: %s", source, type(error).__name__)
        raise RequestRefused(
            503, "store-unavailable", "the store failed; retry (replays are safe)"
        ) from None
    if result.replied and announcer is not None:
        announcer.add({REPLIED: result.replied})
    if result.kind == "subscription":
        if not _is_sns_url(result.subscribe_url):
            raise RequestRefused(400, "untrusted-subscribe-url", "SubscribeURL is not on SNS")
        try:
            await run_in_threadpool(confirm, str(result.subscribe_url))
        except httpx.HTTPError as error:
            _log.error("sns subscription not confirmed: %s", type(error).__name__)
            raise RequestRefused(
                503, "subscription-not-confirmed", "confirming the subscription failed; retry"
            ) from None
    _log.info(
        "sns %s: kind=%s events=%d suppressed=%d resubscribed=%d unmatched=%d ignored=%s",
        source,
        result.kind,
        result.events,
        result.suppressed,
        result.resubscribed,
        result.unmatched,
        ",".join(f"{reason}:{n}" for reason, n in result.ignored.items()) or "-",
    )
    answer: dict[str, Any] = {
        "success": True,
        "kind": result.kind,
        "events": result.events,
        "suppressed": result.suppressed,
        "resubscribed": result.resubscribed,
    }
    if result.kind in INBOUND_SOURCES:
        answer |= {
            "replied": result.replied,
            "duplicates": result.duplicates,
            "ignored": result.ignored,
        }
    return JSONResponse(answer)
