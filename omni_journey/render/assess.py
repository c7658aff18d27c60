"""Checks on what a message renders to, before anything is sent: at validate time with
the sample context, and at render time for every customer.

Errors stop the send (the renderer raises); warnings ride along on the result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from omni_journey.render.options import RenderOptions
from omni_journey.render.rendered import RenderedEmail, RenderedPush, RenderedSms, RenderedWhatsApp
from omni_journey.render.sms import GSM7_LOOKALIKES, SmsEncoding
from omni_journey.spec.diagnostics import Diagnostic, Severity
from omni_journey.spec.loader import Document, Span
from omni_journey.spec.naming import YamlPath

__all__ = ["Where", "assess_email", "assess_push", "assess_sms", "assess_whatsapp"]

WHATSAPP_MAX_BODY = 4096

# (the file, the value in it or () for a whole template file)
Where = tuple[Document, YamlPath]


def _at(
    where: Where,
    code: str,
    message: str,
    *,
    expected: str | None = None,
    hint: str | None = None,
    severity: Severity = "error",
) -> Diagnostic:
    doc, path = where
    return doc.at(path, code, message, expected=expected, hint=hint, severity=severity)


def assess_email(
    email: RenderedEmail, subject: Where, text: Callable[[], Where], options: RenderOptions
) -> list[Diagnostic]:
    """``text``: where a missing text part points, asked for only when it is missing."""
    found = []
    if not email.subject:
        found.append(_at(subject, "missing-content", "the email subject is empty"))
    elif len(email.subject) > options.subject_max_chars:
        found.append(
            _at(
                subject,
                "subject-too-long",
                f"the subject is {len(email.subject)} characters; inboxes show about "
                f"{options.subject_max_chars}",
                hint="put what matters in the first 40 characters, or shorten it",
                severity="warning",
            )
        )
    if not email.text.strip():
        found.append(
            _at(
                text(),
                "email-no-text",
                "the email has no plain-text part (its HTML has no text in it)",
                hint="add text to the HTML, or write an email.txt next to email.html",
            )
        )
    return found


def _first_use(char: str, sources: Sequence[Document]) -> tuple[Document, Span] | None:
    for doc in sources:
        for number, line in enumerate(doc.lines, start=1):
            col = line.find(char)
            if col >= 0:
                return doc, Span(number, col + 1, number, col + 2)
    return None


def assess_sms(
    sms: RenderedSms, where: Where, sources: Sequence[Document], options: RenderOptions
) -> list[Diagnostic]:
    """``sources``: the files the text comes from, searched for a look-alike character."""
    if not sms.text:
        return [_at(where, "sms-empty", "the SMS has no text")]
    found = []
    if sms.segments > options.sms_max_segments:
        per_part = 153 if sms.encoding is SmsEncoding.GSM7 else 67
        found.append(
            _at(
                where,
                "sms-too-many-segments",
                f"the SMS needs {sms.segments} parts ({sms.encoding}, {sms.units} "
                f"{'septets' if sms.encoding is SmsEncoding.GSM7 else 'UTF-16 units'}); "
                f"at most {options.sms_max_segments} are allowed",
                expected=f"at most {options.sms_max_segments * per_part} "
                f"{'characters' if sms.encoding is SmsEncoding.GSM7 else 'UCS-2 units'}",
                hint="shorten the text; each part holds 153 GSM-7 characters, or 67 once one "
                "character outside GSM-7 makes it UCS-2",
            )
        )
    if sms.non_gsm and all(ch in GSM7_LOOKALIKES for ch in sms.non_gsm):
        message = (
            f"{', '.join(map(repr, sms.non_gsm))} {'makes' if len(sms.non_gsm) == 1 else 'make'}"
            " the SMS UCS-2: a part holds 70 characters (67 when split) instead of 160 (153)"
        )
        hint = "replace " + ", ".join(f"{ch!r} with {GSM7_LOOKALIKES[ch]!r}" for ch in sms.non_gsm)
        first = _first_use(sms.non_gsm[0], sources)
        if first is None:
            found.append(_at(where, "sms-unicode", message, hint=hint, severity="warning"))
        else:
            doc, span = first
            found.append(doc.at_span(span, "sms-unicode", message, hint=hint, severity="warning"))
    return found


def assess_push(push: RenderedPush, where: Where, options: RenderOptions) -> list[Diagnostic]:
    found = []
    if not push.title.strip():
        found.append(_at(where, "missing-content", "the push notification has no title"))
    if push.size > options.push_max_bytes:
        found.append(
            _at(
                where,
                "push-too-large",
                f"the push payload is {push.size} bytes; FCM accepts at most "
                f"{options.push_max_bytes}",
                hint="shorten the body, or send less in data",
            )
        )
    return found


def assess_whatsapp(message: RenderedWhatsApp, where: Where) -> list[Diagnostic]:
    found = []
    if not message.body.strip():
        found.append(_at(where, "missing-content", "the WhatsApp message has no text"))
    elif len(message.body) > WHATSAPP_MAX_BODY:
        found.append(
            _at(
                where,
                "invalid-value",
                f"the WhatsApp text is {len(message.body)} characters; at most "
                f"{WHATSAPP_MAX_BODY} are allowed",
            )
        )
    for parameter in message.params:
        if "\n" in parameter or "\t" in parameter or "     " in parameter:
            found.append(
                _at(
                    where,
                    "invalid-value",
                    "a WhatsApp template parameter contains a line break, a tab or more "
                    "than four spaces in a row, which WhatsApp refuses",
                    hint="keep template parameters on one line",
                )
            )
            break
    return found
