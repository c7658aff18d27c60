"""The MIME every email is sent as: both parts, and RFC 8058 headers exactly as mail
clients need them, checked on the raw bytes."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omni_journey.delivery import Content, OutgoingMessage
from omni_journey.delivery.mime import build_email
from omni_journey.links import LinkSigner

AT = datetime(2026, 5, 1, 10, tzinfo=UTC)
SIGNER = LinkSigner("s3cret", "https://links.shop.example.com/l")


def _message(unsubscribe_url: str | None, subject: str = "Olá ☀") -> OutgoingMessage:
    return OutgoingMessage(
        id=1, idempotency_key="k", channel="email", customer_id="c", to="ana@example.com",
        content=Content(subject=subject, html="<p>Olá</p>", text="Olá"), at=AT,
        unsubscribe_url=unsubscribe_url,
    )  # fmt: skip


def _raw(unsubscribe_url: str | None, subject: str = "Olá ☀") -> bytes:
    return build_email(
        _message(unsubscribe_url, subject), sender="Shop <shop@example.com>"
    ).as_bytes()


def _headers(raw: bytes) -> list[bytes]:
    return raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def test_email_mime_has_both_parts_and_one_click_unsubscribe() -> None:
    raw = _raw("https://x.example/u/abc.def")
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert parsed["Subject"] == "Olá ☀"
    assert parsed["List-Unsubscribe"] == "<https://x.example/u/abc.def>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed.get_body(("plain",)).get_content().strip() == "Olá"


def test_a_long_signed_link_is_written_unencoded_on_one_line() -> None:
    url = SIGNER.unsubscribe("customer-0000000000000000000042", "email", "cart_reminder_last")
    header = f"List-Unsubscribe: <{url}>".encode("ascii")
    assert len(header) > 78  # the length at which the standard folder used to encode it

    raw = _raw(url)

    assert b"\r\n" + header + b"\r\n" in raw
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw
    unsubscribe_lines = [h for h in _headers(raw) if h.lower().startswith(b"list-unsubscribe")]
    assert all(b"=?" not in h for h in unsubscribe_lines), unsubscribe_lines
    # the link in the header is the one the signer made, untouched
    value = BytesParser(policy=policy.default).parsebytes(raw)["List-Unsubscribe"]
    assert SIGNER.verify(value.strip("<>")).customer_id == "customer-0000000000000000000042"


def test_as_string_writes_the_same_header() -> None:
    url = SIGNER.unsubscribe("c-" + "9" * 100, "email", "welcome")
    text = build_email(_message(url), sender="shop@example.com").as_string()
    assert f"\r\nList-Unsubscribe: <{url}>\r\n" in text


def test_other_headers_still_fold_at_78_columns() -> None:
    raw = _raw(SIGNER.unsubscribe("c-" + "9" * 100, "email", "welcome"), subject="Olá ☀ " * 30)
    long_lines = [h for h in _headers(raw) if len(h) > 78]
    assert [h.split(b":", 1)[0] for h in long_lines] == [b"List-Unsubscribe"]


_WORDS = st.sampled_from(
    ["Olá", "☀", "für", "—", "Rabatt", "a", ",", "😀", "10 %", "x" * 90, "ü" * 40, "=?", ""]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_WORDS, max_size=40), st.sampled_from([" ", "  ", "\t"]))
def test_a_long_subject_comes_back_exactly(words: list[str], space: str) -> None:
    # Python's own folder loses spaces between encoded words in long subjects.
    subject = space.join(words).strip()
    raw = _raw(None, subject=subject)
    assert BytesParser(policy=policy.default).parsebytes(raw)["Subject"] == subject
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))


def test_a_plain_long_subject_folds_at_its_spaces_unencoded() -> None:
    subject = "Your cart is waiting for you, and so is a ten percent discount on everything"
    subject += " in it, today only"
    subject_lines = _headers(_raw(None, subject=subject))[2:4]
    assert subject_lines[0].startswith(b"Subject: Your cart")
    assert subject_lines[1].startswith(b" ")
    assert all(len(line) <= 78 and b"=?" not in line for line in subject_lines)


def test_a_link_past_rfc_5322s_998_limit_is_folded_the_standard_way() -> None:
    url = "https://x.example/u/" + "A" * 1000 + ".sig"
    raw = _raw(url)
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert BytesParser(policy=policy.default).parsebytes(raw)["List-Unsubscribe"] == f"<{url}>"


def test_no_list_unsubscribe_without_a_link() -> None:
    raw = _raw(None)
    assert not re.search(rb"(?im)^list-unsubscribe", raw)


def test_a_link_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match=r"linefeed|carriage"):
        _raw("https://x.example/u/a.b\r\nBcc: evil@example.net")
