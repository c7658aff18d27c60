"""The email bytes written directly are the bytes ``build_email(...).as_bytes()`` writes:
compared on generated messages (odd headers, every body encoding) and on the shipped
templates, and read back as a valid MIME message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omni_journey.delivery import Content, OutgoingMessage
from omni_journey.delivery.mime import build_email
from omni_journey.delivery.mime_bytes import email_bytes
from omni_journey.links import LinkSigner
from omni_journey.render import RenderedEmail, TemplateRenderer, sample_context

AT = datetime(2026, 5, 1, 10, tzinfo=UTC)
TEMPLATES = Path(__file__).resolve().parents[3] / "templates"
SIGNER = LinkSigner("s3cret-for-the-mime-tests", "https://links.shop.example.com/l")


def _message(
    *,
    subject: str | None = "Your cart is waiting",
    text: str | None = "Hi Ana,\n\nyour cart is waiting.",
    html: str | None = "<p>Hi Ana,</p><p>your cart is waiting.</p>",
    body: str | None = None,
    to: str = "ana@example.com",
    at: datetime = AT,
    unsubscribe_url: str | None = "https://x.example/u/abc.def",
    message_id: int = 42,
    key: str = "cart:c-1:remind",
) -> OutgoingMessage:
    return OutgoingMessage(
        id=message_id, idempotency_key=key, channel="email", customer_id="c-1", to=to,
        content=Content(subject=subject, html=html, text=text, body=body), at=at,
        unsubscribe_url=unsubscribe_url,
    )  # fmt: skip


def _same(message: OutgoingMessage, sender: str = "Shop <shop@example.com>") -> bytes:
    try:
        expected = build_email(message, sender=sender).as_bytes()
    except Exception as error:  # the direct writer refuses what the library refuses
        with pytest.raises(type(error)):
            email_bytes(message, sender=sender)
        return b""
    written = email_bytes(message, sender=sender)
    assert written == expected
    return written


def test_a_typical_email_reads_back_with_both_parts_and_its_headers() -> None:
    url = SIGNER.unsubscribe("customer-0000000000000000000042", "email", "cart_reminder")
    raw = _same(_message(unsubscribe_url=url, subject="Olá ☀, your cart"))
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == "Olá ☀, your cart"
    assert parsed["To"] == "ana@example.com"
    assert parsed["List-Unsubscribe"] == f"<{url}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Message-ID"].startswith("<omni-42.")
    assert parsed.get_content_type() == "multipart/alternative"
    plain, html = parsed.iter_parts()
    assert plain.get_content().splitlines() == ["Hi Ana,", "", "your cart is waiting."]
    assert html.get_content_type() == "text/html"
    assert "your cart is waiting" in html.get_content()
    assert not parsed.defects and not plain.defects and not html.defects


def test_the_message_id_is_the_same_on_every_write() -> None:
    one = message_from_bytes(email_bytes(_message(), sender="shop@example.com"))
    two = message_from_bytes(email_bytes(_message(), sender="shop@example.com"))
    assert one["Message-ID"] == two["Message-ID"]


@pytest.mark.parametrize(
    "content",
    [
        {"html": None},  # text only: one part
        {"html": "", "text": None, "body": "the body stands in for the text"},
        {"text": ""},
        {"text": "long " * 40},  # past 78 columns: quoted-printable
        {"text": "長い日本語の文章です。" * 12},  # base64 is shorter
        {"text": "line\n" * 30 + "x" * 100 + " \t"},  # more than ten lines, trailing space
        {"text": "a = b\r\nc\rd\x0be\x85f" + "=" * 90},
        {"subject": None},
        {"subject": "=?utf-8?q?looks_encoded?="},
        {"subject": "tab\tand  two spaces " * 5},
        {"to": '"Ana Smith" <ana@example.com>'},
        {"to": "Zoë <zoe@example.com>"},
        {"to": "ana+tag@EXAMPLE.com"},
        {"to": "a" * 80 + "@example.com"},
        {"at": datetime(2026, 5, 1, 10)},  # naive: -0000
        {"at": datetime(2026, 5, 1, 10, tzinfo=ZoneInfo("Asia/Kolkata"))},
        {"at": datetime(1890, 5, 1, 10, tzinfo=ZoneInfo("Europe/Amsterdam"))},  # +00:19:32
        {"at": datetime(99, 5, 1, 10, tzinfo=UTC)},
        {"unsubscribe_url": None},
        {"unsubscribe_url": "https://x.example/u/" + "A" * 1000},
        {"unsubscribe_url": "https://x.example/u/=?a?b?="},
        {"unsubscribe_url": "https://x.example/ü"},
        {"unsubscribe_url": "https://x.example/u\r\nBcc: evil@example.net"},
        {"message_id": 10**40},
    ],
)
def test_odd_messages_are_written_as_the_library_writes_them(content: dict[str, object]) -> None:
    _same(_message(**content))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "sender",
    ["shop@example.com", "Shop <shop@example.com>", "Ümlaut GmbH <u@example.com>", "nobody"],
)
def test_every_sender_is_written_as_the_library_writes_it(sender: str) -> None:
    _same(_message(), sender=sender)


_TEXT = st.lists(
    st.sampled_from([*"aZ =.\t\r\n", "é", "☀", "😀", "\x0b", "\x85", "\u2028", "=?", "long" * 25]),
    max_size=80,
).map("".join)
_ADDRESSES = st.one_of(
    st.from_regex(r"[a-z0-9.+_=?-]{1,70}@[a-z0-9.-]{1,40}", fullmatch=True),
    st.text(max_size=30).map(lambda name: f"{name} <x@example.com>"),
)
_URLS = st.one_of(st.none(), st.text(max_size=60).map(lambda s: "https://x.example/" + s))
_OFFSETS = st.integers(-23 * 60, 23 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@settings(max_examples=400, deadline=None)
@given(
    subject=st.one_of(st.none(), _TEXT),
    text=st.one_of(st.none(), _TEXT.map(lambda s: s * 3)),
    html=st.one_of(st.none(), _TEXT.map(lambda s: f"<p>{s}</p>" * 4)),
    to=_ADDRESSES,
    at=st.datetimes(min_value=datetime(1, 1, 2), timezones=st.one_of(st.none(), _OFFSETS)),
    url=_URLS,
    message_id=st.integers(-(10**6), 10**12),
)
def test_any_message_is_written_as_the_library_writes_it(
    subject: str | None,
    text: str | None,
    html: str | None,
    to: str,
    at: datetime,
    url: str | None,
    message_id: int,
) -> None:
    message = _message(
        subject=subject, text=text, html=html, to=to, at=at, unsubscribe_url=url,
        message_id=message_id,
    )  # fmt: skip
    _same(message)


def test_the_shipped_emails_are_written_as_the_library_writes_them() -> None:
    renderer = TemplateRenderer(TEMPLATES, secret_key="a-test-secret-of-some-length")
    keys = sorted(p.name for p in TEMPLATES.iterdir() if (p / "message.yaml").is_file())
    written = 0
    for index, key in enumerate(keys):
        for context in (sample_context(), sample_context("de-AT")):
            email = renderer.render(key, "email", context)
            assert isinstance(email, RenderedEmail)
            message = OutgoingMessage(
                id=index, idempotency_key=f"{key}:{context.customer_id}", channel="email",
                customer_id=context.customer_id, to="ana@example.com", content=Content.of(email),
                at=AT, unsubscribe_url=email.unsubscribe_url,
            )  # fmt: skip
            assert _same(message)
            written += 1
    assert written >= 10


@settings(max_examples=500, deadline=None)
@given(
    st.text(st.sampled_from([*"ab ,.=?_\t", "é", "ü", "☀", "😀", "\x85", "\ud800"]), max_size=70)
)
def test_any_subject_is_written_as_the_library_writes_it(subject: str) -> None:
    # around the length where one encoded word no longer fits on the Subject line
    _same(_message(subject=subject))
