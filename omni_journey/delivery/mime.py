"""The email a customer gets, as real MIME (stdlib ``email``): what SES sends raw and what
the file outbox writes as ``.eml``, byte for byte the same builder."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from omni_journey.delivery.base import OutgoingMessage

__all__ = ["build_email"]


def build_email(message: OutgoingMessage, *, sender: str) -> EmailMessage:
    """multipart/alternative (plain text, then HTML) with RFC 8058 one-click unsubscribe.

    ``List-Unsubscribe`` is set only when ``message.unsubscribe_url`` is (the ses
    provider refuses to start without one).
    """
    content = message.content
    email = EmailMessage(policy=SMTP)
    email["From"] = sender
    email["To"] = message.to
    email["Subject"] = content.subject or ""
    email["Date"] = format_datetime(message.at)
    domain = sender.rsplit("@", 1)[-1].strip(" >") or "omni-journey.invalid"
    email["Message-ID"] = make_msgid(idstring=f"omni-{message.id}", domain=domain)
    if message.unsubscribe_url:
        email["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
        email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email["X-Omni-Message"] = str(message.id)
    text = content.text if content.text is not None else (content.body or "")
    email.set_content(text, subtype="plain", charset="utf-8")
    if content.html:
        email.add_alternative(content.html, subtype="html", charset="utf-8")
    return email
