"""The email a customer gets, as real MIME (stdlib ``email``): what SES sends raw and what
the file outbox writes as ``.eml``, byte for byte the same builder."""

from __future__ import annotations

import hashlib
from email.header import Header
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime
from typing import Any, Final

from omni_journey.delivery.base import OutgoingMessage

__all__ = ["MIME_POLICY", "build_email"]

# RFC 5322: lines SHOULD stay within 78 characters and MUST within 998 (without CRLF).
_FOLD_AT: Final = 78
_MAX_LINE: Final = 998
# Headers whose value is ASCII and must reach the mail client exactly as written.
_VERBATIM: Final = frozenset({"list-unsubscribe", "list-unsubscribe-post"})
# Free text folded by the legacy ``email.header`` encoder (lossless, see below).
_TEXT: Final = frozenset({"subject"})


class _MimePolicy(EmailPolicy):
    """The SMTP policy (CRLF, 78-column folding) with two headers written our way.

    ``List-Unsubscribe`` and ``List-Unsubscribe-Post`` go on one line as given. The
    standard folder cannot break ``<https://...>`` (no whitespace in it), so once the
    line passes 78 columns it RFC 2047-encodes the whole value
    (``=?utf-8?q?=3Chttps...``), and mail clients then offer no one-click unsubscribe.
    78 columns is only a recommendation; a value that is not plain ASCII, or that would
    pass 998, is folded the standard way.

    ``Subject``: the standard folder (Python 3.11) drops or moves spaces when it folds
    a long subject into encoded words (about one long non-ASCII subject in eight); the
    legacy ``email.header.Header`` encoder keeps every character. ASCII subjects fold at
    their spaces, unencoded; anything else becomes UTF-8 encoded words.
    """

    def _ours(self, name: str, value: Any) -> str | None:
        key = name.lower()
        text = str(value)
        if any(c in text for c in "\r\n"):
            return None  # never reached: setting such a header already raised
        if key in _VERBATIM:
            line = f"{name}: {text}"
            if text.isascii() and len(line) <= _MAX_LINE:
                return line + self.linesep
        elif key in _TEXT:
            return f"{name}: {self._encode_text(name, text)}{self.linesep}"
        return None

    def _encode_text(self, name: str, text: str) -> str:
        if text.isascii() and "=?" not in text:  # "=?" would read as an encoded word
            folded = self._header(name, text, "us-ascii")
            if all(len(line) <= _MAX_LINE for line in folded.split(self.linesep)):
                return folded
        return self._header(name, text, "utf-8")

    def _header(self, name: str, text: str, charset: str) -> str:
        folded = Header(text, charset, header_name=name).encode(
            linesep=self.linesep, maxlinelen=_FOLD_AT
        )
        # A first word too long for the first line makes it fold right after the
        # colon, which would read back as a leading space: keep that word up there.
        if folded.startswith(self.linesep):
            folded = folded[len(self.linesep) :].lstrip(" \t")
        return folded

    def fold(self, name: str, value: Any) -> str:
        return self._ours(name, value) or super().fold(name, value)

    def fold_binary(self, name: str, value: Any) -> bytes:
        line = self._ours(name, value)
        if line is not None:
            return line.encode("ascii")
        return super().fold_binary(name, value)


MIME_POLICY: Final = _MimePolicy(linesep="\r\n")


def build_email(message: OutgoingMessage, *, sender: str) -> EmailMessage:
    """multipart/alternative (plain text, then HTML) with RFC 8058 one-click unsubscribe.

    ``List-Unsubscribe`` is set only when ``message.unsubscribe_url`` is (the dispatcher
    sets it on every email: the renderer's signed link, or one it signs itself).
    """
    content = message.content
    email = EmailMessage(policy=MIME_POLICY)
    email["From"] = sender
    email["To"] = message.to
    email["Subject"] = content.subject or ""
    email["Date"] = format_datetime(message.at)
    domain = sender.rsplit("@", 1)[-1].strip(" >") or "omni-journey.invalid"
    # From the idempotency key, not make_msgid (clock, pid, random): one message, one
    # id, on every attempt and in every replay of the demo.
    token = hashlib.sha256(message.idempotency_key.encode()).hexdigest()
    email["Message-ID"] = f"<omni-{message.id}.{token[:20]}@{domain}>"
    if message.unsubscribe_url:
        email["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
        email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email["X-Omni-Message"] = str(message.id)
    text = content.text if content.text is not None else (content.body or "")
    email.set_content(text, subtype="plain", charset="utf-8")
    if content.html:
        email.add_alternative(content.html, subtype="html", charset="utf-8")
        # the generator would draw a random boundary; a hash never found in the parts
        email.set_boundary(f"=_omni_{token[20:52]}")
    return email
