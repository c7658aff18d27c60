"""Customers writing back: /inbound/sms, /inbound/whatsapp and /inbound/email on the
collector (real uvicorn, real SQLite and PostgreSQL), fed AWS's own notification shapes
with real SNS signatures, become ``message.replied`` events on the address's owner."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select, update

from omni_journey.delivery.recipients import load_recipients
from omni_journey.ingest.profiles import ingest_profiles
from omni_journey.settings import Settings
from omni_journey.store.core import CONSENTS, CUSTOMERS, EVENTS, MESSAGES, SUPPRESSIONS
from tests.integration.test_collector import NOW, serving
from tests.support.inbound import TOPIC, SnsSigner, email, sms, whatsapp, whatsapp_text
from tests.support.outbox import add_message

PHONE = "+4915112345678"
OTHER_PHONE = "+4915112345679"
ANA = "ana@example.com"
SNS_HEADERS = {"Content-Type": "text/plain; charset=UTF-8"}


@pytest.fixture(scope="module")
def signer() -> SnsSigner:
    return SnsSigner.create()


@dataclass
class Inbound:
    url: str
    engine: Engine
    http: httpx.Client
    signer: SnsSigner

    def post(self, path: str, message: Any, sns_id: str = "sns-1") -> httpx.Response:
        body = message
        if isinstance(body, dict) and "Signature" not in body:
            body = self.signer.notification(body, sns_id)
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.http.post(f"{self.url}{path}", content=content, headers=SNS_HEADERS)

    def replies(self) -> list[Any]:
        with self.engine.connect() as connection:
            return list(
                connection.execute(
                    select(EVENTS).where(EVENTS.c.name == "message.replied").order_by(EVENTS.c.seq)
                )
            )

    def names(self) -> list[str]:
        with self.engine.connect() as connection:
            return list(connection.execute(select(EVENTS.c.name).order_by(EVENTS.c.seq)).scalars())

    def sent(self, customer: str, channel: str, key: str, provider_id: str, at: Any) -> int:
        """An outbox row the dispatcher marked sent, with the provider's id."""
        row_id = add_message(self.engine, key, customer, channel, message_key=f"{key}_msg")
        with self.engine.begin() as connection:
            connection.execute(
                update(MESSAGES).where(MESSAGES.c.id == row_id).values(
                    status="sent", sent_at=at, provider="sns", provider_message_id=provider_id
                )
            )  # fmt: skip
        return row_id


def _profiles(engine: Engine, tmp: Any, *records: dict[str, Any]) -> None:
    result = ingest_profiles(engine, records, now=NOW - timedelta(days=1),
                             settings=Settings(home=tmp / "home"))  # fmt: skip
    assert result.rejected == []


@pytest.fixture
def inbound(store: Engine, signer: SnsSigner, tmp_path: Any) -> Iterator[Inbound]:
    _profiles(
        store, tmp_path,
        {"customer_id": "c-ana", "email": ANA, "phone": PHONE,
         "consent": {"email": True, "sms": True, "whatsapp": True}},
        {"customer_id": "c-ben", "email": "ben@example.com", "phone": OTHER_PHONE},
    )  # fmt: skip
    settings = Settings(feedback_topic_arns=TOPIC)
    with (
        serving(store, settings, sns_verifier=signer.verifier(), confirm_subscription=print) as url,
        httpx.Client(timeout=30) as http,
    ):
        yield Inbound(url, store, http, signer)


# --- SMS ---------------------------------------------------------------------------------


def test_an_sms_reply_joins_the_history_once_linked_to_the_message_it_answers(
    inbound: Inbound,
) -> None:
    answered = inbound.sent("c-ana", "sms", "cart", "pub-1", NOW - timedelta(hours=3))
    inbound.sent("c-ana", "sms", "later", "pub-2", NOW - timedelta(hours=1))  # not this one
    reply = sms(PHONE, "Is the serum back in stock?", "in-1", answers="pub-1")

    first = inbound.post("/inbound/sms", reply, "sns-1")
    again = inbound.post("/inbound/sms", reply, "sns-1")  # SNS delivers it again

    assert first.status_code == 200, first.text
    assert first.json() == {
        "success": True,
        "kind": "sms",
        "events": 1,
        "suppressed": 0,
        "resubscribed": 0,
        "replied": 1,
        "duplicates": 0,
        "ignored": {},
    }
    assert (again.json()["replied"], again.json()["duplicates"]) == (0, 1)
    [event] = inbound.replies()
    assert (event.customer_id, event.event_id) == ("c-ana", "message.replied:sms:in-1")
    assert event.properties == {
        "channel": "sms", "text": "Is the serum back in stock?", "inbound_id": "in-1",
        "in_reply_to": answered, "matched_by": "provider_message_id", "message": "cart_msg",
        "journey": "welcome", "step": "hello",
    }  # fmt: skip


def test_an_sms_reply_without_a_reference_answers_the_last_sms_sent_to_its_owner(
    inbound: Inbound,
) -> None:
    inbound.sent("c-ana", "sms", "first", "pub-1", NOW - timedelta(hours=3))
    last = inbound.sent("c-ana", "sms", "second", "pub-2", NOW - timedelta(hours=1))
    inbound.sent("c-ben", "sms", "bens", "pub-3", NOW - timedelta(minutes=5))  # another's
    inbound.sent("c-ana", "sms", "future", "pub-4", NOW + timedelta(hours=1))  # after it

    inbound.post("/inbound/sms", sms(PHONE, "yes please", "in-7"))
    # a reference to somebody else's message is never followed
    inbound.post("/inbound/sms", sms(PHONE, "and this", "in-8", answers="pub-3"), "sns-2")

    first, second = inbound.replies()
    assert (first.properties["in_reply_to"], first.properties["matched_by"]) == (last, "last_sent")
    assert (second.properties["in_reply_to"], second.customer_id) == (last, "c-ana")


def test_stop_and_start_keep_working_and_are_replies_too(inbound: Inbound) -> None:
    stop = inbound.post("/inbound/sms", sms(PHONE, " stop. ", "in-1"), "sns-1")
    inbound.post("/inbound/sms", sms(PHONE, " stop. ", "in-1"), "sns-1")  # again
    assert (stop.json()["suppressed"], stop.json()["replied"]) == (1, 1)
    with inbound.engine.connect() as connection:
        suppressed = connection.execute(select(SUPPRESSIONS.c.address)).scalars().all()
        consent = connection.execute(
            select(CONSENTS.c.granted).where(CONSENTS.c.customer_id == "c-ana",
                                             CONSENTS.c.channel == "sms")
        ).scalar_one()  # fmt: skip
    assert (suppressed, consent) == ([PHONE], False)

    start = inbound.post("/inbound/sms", sms(PHONE, "START", "in-2"), "sns-2")
    assert (start.json()["resubscribed"], start.json()["replied"]) == (1, 1)
    assert inbound.names() == [
        "message.unsubscribed", "message.replied", "message.resubscribed", "message.replied",
    ]  # fmt: skip
    keywords = [(e.properties["text"], e.properties["keyword"]) for e in inbound.replies()]
    assert keywords == [("stop.", "opt_out"), ("START", "opt_in")]


def test_a_number_nobody_owns_is_ignored_with_a_reason_not_an_error(inbound: Inbound) -> None:
    stranger = inbound.post("/inbound/sms", sms("+4915199999999", "who is this?", "in-9"))
    invalid = inbound.post("/inbound/sms", sms("12", "hm", "in-10"), "sns-2")

    assert stranger.status_code == 200, stranger.text
    assert (stranger.json()["replied"], stranger.json()["ignored"]) == (0, {"unknown_address": 1})
    assert invalid.json()["ignored"] == {"invalid_address": 1}
    assert inbound.replies() == []
    assert "+4915199999999" not in stranger.text


def test_a_reply_from_a_merged_customer_lands_on_the_survivor(inbound: Inbound) -> None:
    with inbound.engine.begin() as connection:  # c-ben was merged into c-ana
        connection.execute(
            update(CUSTOMERS).where(CUSTOMERS.c.id == "c-ben").values(merged_into="c-ana")
        )
    inbound.post("/inbound/sms", sms(OTHER_PHONE, "it's me again", "in-3"))
    [event] = inbound.replies()
    assert event.customer_id == "c-ana"


# --- WhatsApp -----------------------------------------------------------------------------


def test_a_whatsapp_reply_is_recorded_linked_and_opens_the_service_window(
    inbound: Inbound,
) -> None:
    answered = inbound.sent("c-ana", "whatsapp", "wa", "wamid.OURS==", NOW - timedelta(hours=2))
    written = NOW - timedelta(minutes=3)
    event = whatsapp([
        whatsapp_text(PHONE[1:], "Hi, what sizes?", "wamid.IN1==", written, answers="wamid.OURS=="),
        whatsapp_text("4915199999999", "hello?", "wamid.IN2==", written),
    ])  # fmt: skip
    status = whatsapp(
        statuses=[
            {
                "id": "wamid.OURS==",
                "status": "read",
                "timestamp": "1777888000",
                "recipient_id": PHONE[1:],
            }
        ]
    )

    answer = inbound.post("/inbound/whatsapp", event, "sns-1")
    read = inbound.post("/inbound/whatsapp", status, "sns-2")

    assert answer.status_code == 200, answer.text
    assert (answer.json()["replied"], answer.json()["ignored"]) == (1, {"unknown_address": 1})
    assert (read.status_code, read.json()["replied"], read.json()["ignored"]) == (200, 0, {})
    [reply] = inbound.replies()
    assert reply.event_id == "message.replied:whatsapp:wamid.IN1=="
    assert reply.properties["text"] == "Hi, what sizes?"
    assert (reply.properties["in_reply_to"], reply.properties["matched_by"]) == (
        answered, "provider_message_id"
    )  # fmt: skip
    assert reply.at == written  # when the customer wrote: the 24-hour window counts from it
    with inbound.engine.connect() as connection:
        view = load_recipients(connection, ["c-ana", "c-ben"], now=NOW).customers
    assert view["c-ana"].last_whatsapp_inbound == written
    assert view["c-ben"].last_whatsapp_inbound is None


# --- email --------------------------------------------------------------------------------


def test_an_email_reply_is_linked_by_the_message_id_ses_gave_ours(inbound: Inbound) -> None:
    answered = inbound.sent("c-ana", "email", "cart", "0100018f-aaaa-000000", NOW)
    quoted = "Yes, hold it for me!\n\nOn Mon, 4 May 2026 at 10:00, Shop <shop@example.com> wrote:\n> Your cart misses you"  # noqa: E501
    reply = email(f"Ana <{ANA.upper()}>", quoted, base64_content=True,
                  in_reply_to="<0100018f-aaaa-000000@email.amazonses.com>")  # fmt: skip

    response = inbound.post("/inbound/email", reply)

    assert response.status_code == 200, response.text
    [event] = inbound.replies()
    assert event.customer_id == "c-ana"
    assert event.properties["text"] == "Yes, hold it for me!"  # the quoted history dropped
    assert (event.properties["in_reply_to"], event.properties["matched_by"]) == (
        answered, "message_id_header"
    )  # fmt: skip


def test_email_replies_that_prove_nothing_are_ignored(inbound: Inbound) -> None:
    ours = inbound.sent("c-ana", "email", "cart", "ses-1", NOW)
    forged = f"<omni-{ours}.0123456789abcdef0123@shop.example.com>"  # a hash we never made
    cases = {
        "unauthenticated": email(ANA, "hi", ses_id="m1", verdict="FAIL"),
        "robot": email(ANA, "I am away", ses_id="m2",
                       extra_headers=[("Auto-Submitted", "auto-replied")]),
        "unlinked": email(ANA, "hello", ses_id="m3", references=forged),
    }  # fmt: skip
    answers = {
        name: inbound.post("/inbound/email", body, name).json() for name, body in cases.items()
    }

    assert answers["unauthenticated"]["ignored"] == {"sender_not_authenticated": 1}
    assert answers["robot"]["ignored"] == {"automatic_reply": 1}
    [event] = inbound.replies()
    assert (event.properties["text"], event.properties["in_reply_to"]) == ("hello", None)


# --- refusals -----------------------------------------------------------------------------


def test_each_path_refuses_other_shapes_and_forgeries_and_stores_nothing(
    inbound: Inbound,
) -> None:
    text = sms(PHONE, "STOP")
    bad_entry = {**whatsapp(), "whatsAppWebhookEntry": "{not json"}
    forged = {**inbound.signer.notification(sms(PHONE, "hi")), "Message": json.dumps(text)}
    cases = [
        ("/inbound/whatsapp", text, 400, "not-inbound-whatsapp"),
        ("/inbound/email", text, 400, "not-inbound-email"),
        ("/inbound/sms", email(ANA, "x"), 400, "not-inbound-sms"),
        ("/inbound/email", {"eventType": "Bounce", "mail": {}}, 400, "not-inbound-email"),
        ("/inbound/whatsapp", bad_entry, 400, "bad-inbound"),
        ("/inbound/sms", forged, 403, "bad-signature"),
        ("/inbound/email", inbound.signer.sign(Message="{}", TopicArn="arn:aws:sns:x:1:y"),
         403, "topic-not-accepted"),
    ]  # fmt: skip
    for path, body, status, reason in cases:
        response = inbound.post(path, body)
        assert (path, response.status_code, response.json()["reason"]) == (
            path, status, reason
        )  # fmt: skip
    assert inbound.names() == []
    with inbound.engine.connect() as connection:
        assert connection.execute(select(SUPPRESSIONS)).all() == []


def test_a_foreign_topic_is_refused_before_a_certificate_is_fetched(
    sqlite_store: Engine, tmp_path: Any
) -> None:
    signer = SnsSigner.create()
    foreign = signer.sign(Message=json.dumps(sms(PHONE, "hi")), TopicArn="arn:aws:sns:x:9:z")
    settings = Settings(feedback_topic_arns=TOPIC)
    with serving(sqlite_store, settings, sns_verifier=signer.verifier()) as url:
        answers = [
            httpx.post(f"{url}/inbound/{source}", content=json.dumps(foreign))
            for source in ("sms", "whatsapp", "email")
        ]
    assert {(a.status_code, a.json()["reason"]) for a in answers} == {(403, "topic-not-accepted")}
    assert signer.fetched == []
