"""SES events through SNS: signature verified, events written once, addresses suppressed;
inbound STOP opts out."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine, select, update

from omni_journey.delivery import FeedbackError
from omni_journey.delivery.feedback import handle_sns_notification
from omni_journey.delivery.sns_signature import SnsSignatureVerifier, canonical_string
from omni_journey.store.tables import Consent, Event, Message, Suppression
from tests.support.outbox import T0, add_customer, add_message

CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem"
TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-events"


@pytest.fixture(scope="module")
def signer() -> tuple[rsa.RSAPrivateKey, bytes]:
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


def _envelope(
    key: rsa.RSAPrivateKey, message: dict[str, Any], sns_id: str = "sns-1"
) -> dict[str, Any]:
    envelope = {
        "Type": "Notification", "MessageId": sns_id, "TopicArn": TOPIC,
        "Message": json.dumps(message), "Timestamp": "2026-05-01T10:00:00.000Z",
        "SignatureVersion": "2", "SigningCertURL": CERT_URL,
    }  # fmt: skip
    signature = key.sign(canonical_string(envelope), padding.PKCS1v15(), hashes.SHA256())
    envelope["Signature"] = base64.b64encode(signature).decode()
    return envelope


def _bounce(ses_id: str, address: str) -> dict[str, Any]:
    return {
        "eventType": "Bounce",
        "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                   "bouncedRecipients": [{"emailAddress": address}]},
        "mail": {"messageId": ses_id, "destination": [address], "tags": {}},
    }  # fmt: skip


def test_a_signed_bounce_suppresses_and_records_once(
    store: Engine, signer: tuple[rsa.RSAPrivateKey, bytes]
) -> None:
    key, pem = signer
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return pem

    verifier = SnsSignatureVerifier(fetch)
    add_customer(store, "c-1", email="ana@example.com")
    message_id = add_message(store, "k-1", "c-1", "email")
    with store.begin() as connection:
        connection.execute(
            update(Message.__table__)  # type: ignore[attr-defined]
            .where(Message.__table__.c.id == message_id)  # type: ignore[attr-defined]
            .values(status="sent", provider="ses", provider_message_id="ses-abc")
        )
    envelope = _envelope(key, _bounce("ses-abc", "ana@example.com"))

    first = handle_sns_notification(store, json.dumps(envelope), now=T0, verifier=verifier,
                                    accepted_topics={TOPIC})  # fmt: skip
    again = handle_sns_notification(store, envelope, now=T0, verifier=verifier,
                                    accepted_topics={TOPIC})  # fmt: skip

    assert (first.events, first.suppressed, first.unmatched) == (1, 1, 0), first
    assert again.events == 0  # SNS redelivery: stored once
    assert fetched == [CERT_URL]  # the certificate is cached
    with store.connect() as connection:
        events = connection.execute(select(Event.__table__)).all()  # type: ignore[attr-defined]
        suppressed = connection.execute(select(Suppression.__table__)).all()  # type: ignore[attr-defined]
    assert [(e.name, e.customer_id, e.properties["bounce_type"]) for e in events] == [
        ("message.bounced", "c-1", "Permanent")
    ]
    assert [(s.channel, s.address, s.reason) for s in suppressed] == [
        ("email", "ana@example.com", "hard_bounce")
    ]


def test_forged_or_foreign_notifications_are_refused(
    sqlite_store: Engine, signer: tuple[rsa.RSAPrivateKey, bytes]
) -> None:
    key, pem = signer
    verifier = SnsSignatureVerifier(lambda url: pem)
    envelope = _envelope(key, _bounce("ses-abc", "ana@example.com"))
    tampered = {**envelope, "Message": json.dumps(_bounce("ses-abc", "bob@example.com"))}
    with pytest.raises(FeedbackError) as error:
        handle_sns_notification(sqlite_store, tampered, now=T0, verifier=verifier,
                                accepted_topics={TOPIC})  # fmt: skip
    assert error.value.reason == "bad_signature"
    elsewhere = {**envelope, "SigningCertURL": "https://evil.example.com/cert.pem"}
    with pytest.raises(FeedbackError) as error:
        handle_sns_notification(sqlite_store, elsewhere, now=T0, verifier=verifier,
                                accepted_topics={TOPIC})  # fmt: skip
    assert error.value.reason == "untrusted_certificate_url"
    with pytest.raises(FeedbackError) as error:
        handle_sns_notification(sqlite_store, envelope, now=T0, verifier=verifier,
                                accepted_topics=set())  # fmt: skip
    assert error.value.reason == "topic_not_accepted"


def test_inbound_stop_withdraws_sms_consent_and_suppresses(
    store: Engine, signer: tuple[rsa.RSAPrivateKey, bytes]
) -> None:
    key, pem = signer
    add_customer(store, "c-1", phone="+4915112345678")
    inbound = {
        "originationNumber": "+4915112345678",
        "destinationNumber": "+15005550006",
        "messageKeyword": "STOP",
        "messageBody": "Stop",
        "inboundMessageId": "in-1",
    }

    result = handle_sns_notification(
        store, _envelope(key, inbound), now=T0,
        verifier=SnsSignatureVerifier(lambda url: pem), accepted_topics={TOPIC},
    )  # fmt: skip

    assert result.kind == "sms" and result.suppressed == 1
    with store.connect() as connection:
        consent = connection.execute(
            select(Consent.__table__).where(Consent.__table__.c.channel == "sms")  # type: ignore[attr-defined]
        ).one()
        names = connection.execute(select(Event.__table__.c.name)).scalars().all()  # type: ignore[attr-defined]
    assert (consent.granted, consent.source) == (False, "sms_keyword")
    assert sorted(names) == ["message.replied", "message.unsubscribed"]


def test_the_topic_is_checked_before_the_signature(
    sqlite_store: Engine, signer: tuple[rsa.RSAPrivateKey, bytes]
) -> None:
    """A body from a topic we do not accept is refused as such, before any certificate
    is fetched or any signature checked (a forged body costs us nothing)."""
    key, pem = signer
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return pem

    verifier = SnsSignatureVerifier(fetch)
    foreign = {**_envelope(key, _bounce("ses-abc", "ana@example.com")), "Signature": "forged"}
    foreign["TopicArn"] = "arn:aws:sns:us-east-1:999999999999:someone-elses"
    with pytest.raises(FeedbackError) as error:
        handle_sns_notification(sqlite_store, foreign, now=T0, verifier=verifier,
                                accepted_topics={TOPIC})  # fmt: skip
    assert error.value.reason == "topic_not_accepted"
    assert fetched == []
