"""What rendering one message for one customer on one channel produces.

Field names match what delivery reads (``delivery.base.Content.of``): email ``subject``,
``html``, ``text``; SMS ``text``; push ``title``, ``body``, ``data``; WhatsApp ``body``
(free text, inside the 24-hour service window) and ``template``, ``language``,
``params`` (an approved template, outside it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from omni_journey.render.sms import SmsEncoding
from omni_journey.spec.diagnostics import Diagnostic

__all__ = [
    "CHANNELS",
    "Channel",
    "RenderedEmail",
    "RenderedMessage",
    "RenderedPush",
    "RenderedSms",
    "RenderedWhatsApp",
    "fcm_payload",
]

Channel = Literal["email", "sms", "push", "whatsapp"]
CHANNELS: tuple[Channel, ...] = ("email", "sms", "push", "whatsapp")


@dataclass(frozen=True)
class _Rendered:
    message_key: str
    locale: str | None  # the locale of the content used (None: the default files)

    warnings: tuple[Diagnostic, ...] = field(default=(), kw_only=True)


@dataclass(frozen=True)
class RenderedEmail(_Rendered):
    """An email: ``html`` has its CSS inlined; ``text`` is the plain-text part."""

    subject: str
    preheader: str | None
    html: str
    text: str
    unsubscribe_url: str
    channel: Literal["email"] = "email"


@dataclass(frozen=True)
class RenderedSms(_Rendered):
    """An SMS and how it travels: GSM-7 or UCS-2, in how many parts."""

    text: str
    encoding: SmsEncoding
    segments: int
    units: int
    non_gsm: tuple[str, ...] = ()  # the characters that made it UCS-2
    channel: Literal["sms"] = "sms"


def fcm_payload(
    title: str, body: str, image: str | None, data: Mapping[str, str]
) -> dict[str, Any]:
    """The FCM v1 ``message`` without its target (delivery adds ``token``)."""
    notification = {"title": title, "body": body}
    if image:
        notification["image"] = image
    return {"notification": notification, "data": dict(data)}


@dataclass(frozen=True)
class RenderedPush(_Rendered):
    """A push notification. ``data`` values are strings (FCM requires it);
    ``payload_bytes`` is the FCM message as JSON, which FCM limits to 4096 bytes."""

    title: str
    body: str
    image: str | None
    deep_link: str | None
    data: Mapping[str, str]
    channel: Literal["push"] = "push"

    @property
    def fcm_message(self) -> dict[str, Any]:
        return fcm_payload(self.title, self.body, self.image, self.data)

    @property
    def payload_bytes(self) -> bytes:
        return json.dumps(self.fcm_message, ensure_ascii=False, separators=(",", ":")).encode()

    @property
    def size(self) -> int:
        return len(self.payload_bytes)


@dataclass(frozen=True)
class RenderedWhatsApp(_Rendered):
    """A WhatsApp message: ``body`` is sent inside the 24-hour service window; outside
    it only the approved ``template`` (with ``language`` and ``params``) may be sent."""

    body: str
    template: str | None = None
    language: str | None = None
    params: tuple[str, ...] = ()
    channel: Literal["whatsapp"] = "whatsapp"


RenderedMessage: TypeAlias = RenderedEmail | RenderedSms | RenderedPush | RenderedWhatsApp
