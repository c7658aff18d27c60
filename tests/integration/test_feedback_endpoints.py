"""SNS endpoints on the collector (real uvicorn, real SQLite and PostgreSQL): SES event
publishing at /feedback/ses and two-way SMS at /inbound/sms, signatures verified."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine, insert, select, update

from omni_journey.delivery.sns_signature import SnsSignatureVerifier, canonical_string
from omni_journey.settings import Settings
from omni_journey.store.tables import Consent, Event, Message, Suppression
from tests.integration.test_collector import serving
from tests.support.outbox import add_customer, add_message

CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem"
TOPIC = "arn:aws:sns:us-east-1:123456789012:omni-feedback"
PHONE = "+4915112345678"
SUBSCRIBE_URL = (
    "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"
    f"&TopicArn={TOPIC}&Token=2336412f37"
)
SNS_HEADERS = {"Content-Type": "text/plain; charset=UTF-8"}  # what SNS sends

_EVENTS = Event.__table__  # type: ignore[attr-defined]
_SUPPRESSIONS = Suppression.__table__  # type: ignore[attr-defined]
_CONSENTS = Consent.__table__  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def sns_key() -> tuple[rsa.RSAPrivateKey, bytes]:
    """A throwaway SNS signing key and its certificate (PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return key, cert.public_bytes(serialization.Encoding.PEM)


def _signed(key: rsa.RSAPrivateKey, **fields: Any) -> dict[str, Any]:
    envelope = {
        "Type": "Notification", "MessageId": "sns-1", "TopicArn": TOPIC,
        "Timestamp": "2026-05-01T10:00:00.000Z", "SignatureVersion": "2",
        "SigningCertURL": CERT_URL, **fields,
    }  # fmt: skip
    signature = key.sign(canonical_string(envelope), padding.PKCS1v15(), hashes.SHA256())
    return {**envelope, "Signature": base64.b64encode(signature).decode()}


def _notification(key: rsa.RSAPrivateKey, message: dict[str, Any], sns_id: str = "sns-1") -> Any:
    return _signed(key, Message=json.dumps(message), MessageId=sns_id)


def _bounce(ses_id: str, address: str) -> dict[str, Any]:
    return {
        "eventType": "Bounce",
        "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                   "bouncedRecipients": [{"emailAddress": address}]},
        "mail": {"messageId": ses_id, "destination": [address], "tags": {}},
    }  # fmt: skip


def _inbound(text: str, inbound_id: str = "in-1") -> dict[str, Any]:
    return {
        "originationNumber": PHONE,
        "destinationNumber": "+15005550006",
        "messageKeyword": "KEYWORD_123456789012",
        "messageBody": text,
        "inboundMessageId": inbound_id,
    }


@dataclass
class Sns:
    url: str
    engine: Engine
    http: httpx.Client
    key: rsa.RSAPrivateKey
    confirmed: list[str] = field(default_factory=list)

    def post(self, path: str, envelope: Any) -> httpx.Response:
        body = envelope if isinstance(envelope, bytes) else json.dumps(envelope).encode()
        return self.http.post(f"{self.url}{path}", content=body, headers=SNS_HEADERS)

    def rows(self, table: Any) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(select(table)).all())


def _settings(**overrides: Any) -> Settings:
    return Settings(
        **{"feedback_topic_arns": f"{TOPIC}, arn:aws:sns:eu-west-1:1:other", **overrides}
    )


@pytest.fixture
def sns(store: Engine, sns_key: tuple[rsa.RSAPrivateKey, bytes]) -> Iterator[Sns]:
    key, pem = sns_key
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return pem

    confirmed: list[str] = []
    options = {
        "sns_verifier": SnsSignatureVerifier(fetch),
        "confirm_subscription": confirmed.append,
    }
    with serving(store, _settings(), **options) as url, httpx.Client(timeout=30) as http:
        yield Sns(url, store, http, key, confirmed)
    assert set(fetched) <= {CERT_URL}


# --- SES events -------------------------------------------------------------------------


def test_a_signed_ses_bounce_is_stored_once_and_suppresses(sns: Sns) -> None:
    add_customer(sns.engine, "c-1", email="ana@example.com")
    message_id = add_message(sns.engine, "k-1", "c-1", "email")
    with sns.engine.begin() as connection:
        connection.execute(
            update(Message.__table__)  # type: ignore[attr-defined]
            .where(Message.__table__.c.id == message_id)  # type: ignore[attr-defined]
            .values(status="sent", provider="ses", provider_message_id="ses-abc")
        )
    envelope = _notification(sns.key, _bounce("ses-abc", "ana@example.com"))

    first = sns.post("/feedback/ses", envelope)
    again = sns.post("/feedback/ses", envelope)  # SNS redelivers

    assert first.status_code == 200, first.text
    assert first.json() == {
        "success": True,
        "kind": "ses",
        "events": 1,
        "suppressed": 1,
        "resubscribed": 0,
    }
    assert (again.status_code, again.json()["events"]) == (200, 0)
    [event] = sns.rows(_EVENTS)
    assert (event.name, event.customer_id, event.event_id) == (
        "message.bounced",
        "c-1",
        "message.bounced:sns:sns-1",
    )
    assert [(s.channel, s.address, s.reason) for s in sns.rows(_SUPPRESSIONS)] == [
        ("email", "ana@example.com", "hard_bounce")
    ]


def test_forged_or_foreign_notifications_are_refused_and_store_nothing(sns: Sns) -> None:
    envelope = _notification(sns.key, _bounce("ses-abc", "ana@example.com"))
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = {
        "tampered": ({**envelope, "Message": json.dumps(_bounce("x", "bob@example.com"))}, 403,
                     "bad-signature"),
        "other key": (_notification(other_key, _bounce("x", "bob@example.com")), 403,
                      "bad-signature"),
        "foreign topic": (_signed(sns.key, Message="{}", TopicArn="arn:aws:sns:us-east-1:9:x"),
                          403, "topic-not-accepted"),
        "cert elsewhere": ({**envelope, "SigningCertURL": "https://evil.example.com/c.pem"},
                           403, "untrusted-certificate-url"),
        "unsigned": ({k: v for k, v in envelope.items() if k != "Signature"}, 403,
                     "bad-signature"),
        "not json": (b"{", 400, "invalid-json"),
        "not an object": (b"[]", 400, "invalid-shape"),
    }  # fmt: skip
    for name, (body, status, reason) in cases.items():
        response = sns.post("/feedback/ses", body)
        assert (name, response.status_code, response.json()["reason"]) == (name, status, reason)
        assert "bob@example.com" not in response.text
    assert sns.rows(_EVENTS) == [] and sns.rows(_SUPPRESSIONS) == []


def test_a_subscription_is_confirmed_once_its_signature_checks(sns: Sns) -> None:
    confirmation = _signed(
        sns.key, Type="SubscriptionConfirmation", Token="2336412f37", SubscribeURL=SUBSCRIBE_URL,
        Message="You have chosen to subscribe to the topic.",
    )  # fmt: skip
    response = sns.post("/feedback/ses", confirmation)
    assert response.status_code == 200, response.text
    assert response.json()["kind"] == "subscription"
    assert sns.confirmed == [SUBSCRIBE_URL]

    forged = {**confirmation, "SubscribeURL": "https://evil.example.com/confirm"}
    assert sns.post("/feedback/ses", forged).status_code == 403
    signed_but_elsewhere = _signed(
        sns.key, Type="SubscriptionConfirmation", Token="t", Message="m",
        SubscribeURL="https://evil.example.com/?Action=ConfirmSubscription",
    )  # fmt: skip
    refused = sns.post("/feedback/ses", signed_but_elsewhere)
    assert (refused.status_code, refused.json()["reason"]) == (400, "untrusted-subscribe-url")
    assert sns.confirmed == [SUBSCRIBE_URL]  # never fetched anything else


def test_a_failed_confirmation_is_503_so_sns_retries(
    sqlite_store: Engine, sns_key: tuple[rsa.RSAPrivateKey, bytes]
) -> None:
    key, pem = sns_key

    def unreachable(url: str) -> None:
        raise httpx.ConnectError("no route")

    options = {"sns_verifier": SnsSignatureVerifier(lambda _url: pem),
               "confirm_subscription": unreachable}  # fmt: skip
    confirmation = _signed(
        key, Type="SubscriptionConfirmation", Token="t", Message="m", SubscribeURL=SUBSCRIBE_URL
    )
    with serving(sqlite_store, _settings(), **options) as url:
        response = httpx.post(f"{url}/feedback/ses", content=json.dumps(confirmation))
    assert (response.status_code, response.json()["reason"]) == (503, "subscription-not-confirmed")


def test_an_unavailable_certificate_is_503(sqlite_store: Engine, sns_key: Any) -> None:
    def down(url: str) -> bytes:
        raise httpx.ConnectError("down")

    envelope = _notification(sns_key[0], _bounce("ses-abc", "ana@example.com"))
    with serving(sqlite_store, _settings(), sns_verifier=SnsSignatureVerifier(down)) as url:
        response = httpx.post(f"{url}/feedback/ses", content=json.dumps(envelope))
    assert (response.status_code, response.json()["reason"]) == (503, "certificate-unavailable")


def test_an_unknown_topic_is_refused_before_any_certificate_is_fetched(
    sqlite_store: Engine, sns_key: Any
) -> None:
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return bytes(sns_key[1])

    foreign = "arn:aws:sns:us-east-1:9:not-ours"
    envelopes = [
        _signed(sns_key[0], Message="{}", TopicArn=foreign),
        _signed(sns_key[0], Message="{}", TopicArn=foreign, SigningCertURL=CERT_URL + "?2"),
        {k: v for k, v in _signed(sns_key[0], Message="{}").items() if k != "TopicArn"},
        _signed(sns_key[0], Type="SubscriptionConfirmation", TopicArn=foreign, Token="t",
                Message="m", SubscribeURL=SUBSCRIBE_URL),
    ]  # fmt: skip
    options = {"sns_verifier": SnsSignatureVerifier(fetch), "confirm_subscription": fetched.append}
    with serving(sqlite_store, _settings(), **options) as url:
        answers = [
            httpx.post(f"{url}{path}", content=json.dumps(envelope))
            for envelope in envelopes
            for path in ("/feedback/ses", "/inbound/sms")
        ]
    assert {(a.status_code, a.json()["reason"]) for a in answers} == {(403, "topic-not-accepted")}
    assert fetched == []


def test_the_default_verifier_never_fetches_a_certificate_off_sns(
    sqlite_store: Engine, sns_key: Any
) -> None:
    envelope = _notification(sns_key[0], _bounce("ses-abc", "ana@example.com"))
    envelope["SigningCertURL"] = "https://127.0.0.1:1/cert.pem"  # would fail loudly if fetched
    with serving(sqlite_store, _settings()) as url:
        response = httpx.post(f"{url}/feedback/ses", content=json.dumps(envelope))
    assert (response.status_code, response.json()["reason"]) == (403, "untrusted-certificate-url")


# --- inbound SMS --------------------------------------------------------------------------


def test_inbound_stop_opts_the_number_out(sns: Sns, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="omni_journey")
    add_customer(sns.engine, "c-1", phone=PHONE)

    hello = sns.post("/inbound/sms", _notification(sns.key, _inbound("Hello?"), "sns-0"))
    assert hello.json() == {
        "success": True,
        "kind": "sms",
        "events": 1,  # the message itself, as message.replied
        "suppressed": 0,
        "resubscribed": 0,
        "replied": 1,
        "duplicates": 0,
        "ignored": {},
    }
    assert sns.rows(_SUPPRESSIONS) == []

    stop = sns.post("/inbound/sms", _notification(sns.key, _inbound(" stop. ", "in-2")))
    again = sns.post("/inbound/sms", _notification(sns.key, _inbound(" stop. ", "in-2")))

    assert stop.status_code == 200, stop.text
    assert (stop.json()["kind"], stop.json()["suppressed"]) == ("sms", 1)
    assert again.status_code == 200
    consents = {(c.customer_id, c.channel): c for c in sns.rows(_CONSENTS)}
    assert (consents[("c-1", "sms")].granted, consents[("c-1", "sms")].source) == (
        False,
        "sms_keyword",
    )
    assert consents[("c-1", "email")].granted is True
    assert [(s.channel, s.address, s.reason) for s in sns.rows(_SUPPRESSIONS)] == [
        ("sms", PHONE, "opt_out")
    ]
    assert [(e.name, e.customer_id) for e in sorted(sns.rows(_EVENTS), key=lambda e: e.seq)] == [
        ("message.replied", "c-1"),  # "Hello?"
        ("message.unsubscribed", "c-1"),
        ("message.replied", "c-1"),  # " stop. ", once however often SNS delivers it
    ]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "sns sms" in logged and PHONE not in logged and "c-1" not in logged


def test_inbound_start_opts_the_number_back_in_but_never_lifts_a_bounce(sns: Sns) -> None:
    add_customer(sns.engine, "c-1", phone=PHONE)
    stop = sns.post("/inbound/sms", _notification(sns.key, _inbound("STOP"), "sns-1"))
    assert stop.json()["suppressed"] == 1

    start = sns.post("/inbound/sms", _notification(sns.key, _inbound("Start!", "in-2"), "sns-2"))

    assert start.status_code == 200, start.text
    assert (start.json()["kind"], start.json()["resubscribed"]) == ("sms", 1)
    assert sns.rows(_SUPPRESSIONS) == []
    consents = {(c.customer_id, c.channel): c for c in sns.rows(_CONSENTS)}
    assert (consents[("c-1", "sms")].granted, consents[("c-1", "sms")].source) == (
        True,
        "sms_keyword",
    )
    assert [e.name for e in sorted(sns.rows(_EVENTS), key=lambda e: e.seq)] == [
        "message.unsubscribed",
        "message.replied",
        "message.resubscribed",
        "message.replied",
    ]

    with sns.engine.begin() as connection:  # a hard bounce is not the person's to lift
        connection.execute(
            insert(_SUPPRESSIONS).values(
                channel="sms",
                address="+15005550001",
                reason="hard_bounce",
                created_at=dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
            )
        )
    other = {**_inbound("UNSTOP", "in-3"), "originationNumber": "+15005550001"}
    sns.post("/inbound/sms", _notification(sns.key, other, "sns-3"))
    assert [(s.address, s.reason) for s in sns.rows(_SUPPRESSIONS)] == [
        ("+15005550001", "hard_bounce")
    ]


def test_inbound_sms_takes_only_signed_inbound_messages(sns: Sns) -> None:
    add_customer(sns.engine, "c-1", email="ana@example.com", phone=PHONE)
    forged = {**_notification(sns.key, _inbound("hi")), "Message": json.dumps(_inbound("STOP"))}
    ses_event = _notification(sns.key, _bounce("ses-abc", "ana@example.com"))

    refused_forgery = sns.post("/inbound/sms", forged)
    refused_ses = sns.post("/inbound/sms", ses_event)

    assert (refused_forgery.status_code, refused_forgery.json()["reason"]) == (
        403,
        "bad-signature",
    )
    assert (refused_ses.status_code, refused_ses.json()["reason"]) == (400, "not-inbound-sms")
    assert sns.rows(_SUPPRESSIONS) == [] and sns.rows(_EVENTS) == []
    assert all(c.granted for c in sns.rows(_CONSENTS))
