"""Reading inbound notifications (pure): AWS's documented shapes in, replies out."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from omni_journey.delivery.base import FeedbackError
from omni_journey.delivery.inbound import (
    MAX_TEXT,
    InboundMessage,
    Skipped,
    message_ids,
    parse_email,
    parse_sms,
    parse_whatsapp,
)
from tests.support.inbound import email, sms, whatsapp, whatsapp_text

AT = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


def test_the_documented_two_way_sms_payload() -> None:
    # the example of docs.aws.amazon.com/sms-voice/latest/userguide/two-way-sms-payload.html
    example = {
        "originationNumber": "+14255550182", "destinationNumber": "+12125550101",
        "messageKeyword": "JOIN", "messageBody": "EXAMPLE",
        "inboundMessageId": "cae173d2-66b9-564c-8309-21f858e9fb84",
        "previousPublishedMessageId": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    }  # fmt: skip
    assert parse_sms(example, "sns-1") == InboundMessage(
        channel="sms", address="+14255550182", text="EXAMPLE",
        inbound_id="cae173d2-66b9-564c-8309-21f858e9fb84", at=None,
        answers=("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",),
    )  # fmt: skip
    assert parse_sms({**example, "inboundMessageId": None}, "sns-9").inbound_id == "sns-9"  # type: ignore[union-attr]
    assert parse_sms({**example, "originationNumber": "0"}, "s") == Skipped("invalid_address")
    with pytest.raises(FeedbackError, match="bad_inbound"):
        parse_sms({"messageBody": "x"}, "s")


def test_whatsapp_messages_of_every_kind_and_status_updates() -> None:
    button = {
        "from": "4915112345678",
        "id": "wamid.B",
        "timestamp": "1777888000",
        "type": "interactive",
        "interactive": {"type": "button_reply", "button_reply": {"id": "y", "title": "Yes"}},
    }
    photo = {"from": "4915112345678", "id": "wamid.P", "timestamp": "1777888001",
             "type": "image", "image": {"id": "media-1", "caption": "this one"}}  # fmt: skip
    event = whatsapp([whatsapp_text("4915112345678", " hi ", "wamid.T", AT, "wamid.OURS"),
                      button, photo])  # fmt: skip
    text, choice, image = parse_whatsapp(event, "sns-1")
    assert text == InboundMessage(
        "whatsapp", "+4915112345678", "hi", "wamid.T", AT, ("wamid.OURS",)
    )
    assert isinstance(choice, InboundMessage) and isinstance(image, InboundMessage)
    assert (choice.text, choice.detail) == ("Yes", {"message_type": "interactive"})
    assert (image.text, image.detail, image.answers) == ("this one", {"message_type": "image"}, ())
    statuses = whatsapp(statuses=[{"id": "wamid.OURS", "status": "delivered"}])
    assert parse_whatsapp(statuses, "sns-2") == []
    # a whole webhook body (object + entry list) is read the same
    entry = json.loads(event["whatsAppWebhookEntry"])
    whole = {**event, "whatsAppWebhookEntry": json.dumps({"object": "whatsapp_business_account",
                                                          "entry": [entry]})}  # fmt: skip
    assert parse_whatsapp(whole, "sns-1") == [text, choice, image]


@pytest.mark.parametrize(
    "entry",
    ['{"id": "1"}', "[1]", "{broken", json.dumps({"changes": [{"value": {"messages": [{}]}}]})],
)
def test_malformed_whatsapp_entries_are_refused(entry: str) -> None:
    with pytest.raises(FeedbackError, match="bad_inbound"):
        parse_whatsapp({**whatsapp(), "whatsAppWebhookEntry": entry}, "sns-1")


def test_the_documented_ses_receipt_notification() -> None:
    reply = email("Ana Example <ana@Example.COM>", "Thanks!\n> old text", ses_id="ses-in",
                  in_reply_to="<a@x.amazonses.com>", references="<old@x> <a@x.amazonses.com> <b@y>",
                  at="2026-05-04T10:00:00.000Z")  # fmt: skip
    parsed = parse_email(reply, "sns-1")
    assert parsed == InboundMessage(
        channel="email", address="ana@example.com", text="Thanks!", inbound_id="ses-in",
        at=AT, answers=("a@x.amazonses.com", "b@y", "old@x"),
    )  # fmt: skip
    assert parse_email(email("x@example.com", "t", base64_content=True), "s").text == "t"  # type: ignore[union-attr]


def test_emails_that_are_not_replies_to_record() -> None:
    spam = email("x@example.com", "buy")
    spam["receipt"]["spamVerdict"] = {"status": "FAIL"}
    no_content = {k: v for k, v in email("x@example.com", "hi").items() if k != "content"}
    assert parse_email(spam, "s") == Skipped("spam_or_virus")
    assert parse_email(email("not an address", "x"), "s") == Skipped("invalid_address")
    assert parse_email(no_content, "s").text == ""  # type: ignore[union-attr]
    with pytest.raises(FeedbackError, match="bad_inbound"):
        parse_email({"notificationType": "Bounce", "mail": {}}, "s")


def test_html_only_and_long_replies() -> None:
    html = email("x@example.com", "<p>Yes &amp; <b>thanks</b></p>",
                 extra_headers=[("Content-Type", "text/html; charset=UTF-8")])  # fmt: skip
    html["content"] = html["content"].replace("text/plain", "text/html", 1)
    assert " ".join(parse_email(html, "s").text.split()) == "Yes & thanks"  # type: ignore[union-attr]
    long = parse_sms(sms("+4915112345678", "x" * (MAX_TEXT + 10)), "s")
    assert isinstance(long, InboundMessage)
    assert (len(long.text), long.detail) == (MAX_TEXT, {"text_truncated": True})


def test_reply_text_is_always_storable() -> None:
    parsed = parse_sms(sms("+4915112345678", " a\x00b \ud800c "), "s")
    assert isinstance(parsed, InboundMessage) and parsed.text == "ab ?c"


def test_message_ids_in_a_header() -> None:
    assert message_ids("<a@b> <c.d@e>\r\n\t<f@g>") == ["a@b", "c.d@e", "f@g"]
    assert message_ids("no ids here") == []
