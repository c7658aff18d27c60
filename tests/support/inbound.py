"""Signed SNS notifications of customers writing back, in the shapes AWS publishes them
(two-way SMS, End User Messaging Social WhatsApp events, SES receipt rules), signed with
a throwaway key whose certificate a :class:`SnsSignatureVerifier` is handed."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from omni_journey.delivery.sns_signature import SnsSignatureVerifier, canonical_string

CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-inbound.pem"
TOPIC = "arn:aws:sns:us-east-1:123456789012:omni-inbound"
OUR_NUMBER = "+12125550101"


@dataclass
class SnsSigner:
    """A throwaway SNS signing key and certificate; ``fetched`` lists certificate URLs
    the verifier asked for."""

    key: rsa.RSAPrivateKey
    pem: bytes
    fetched: list[str] = field(default_factory=list)

    @classmethod
    def create(cls) -> SnsSigner:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(7)
            .not_valid_before(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
            .not_valid_after(dt.datetime(2027, 6, 1, tzinfo=dt.UTC))
            .sign(key, hashes.SHA256())
        )  # fmt: skip
        return cls(key, cert.public_bytes(serialization.Encoding.PEM))

    def verifier(self) -> SnsSignatureVerifier:
        def fetch(url: str) -> bytes:
            self.fetched.append(url)
            return self.pem

        return SnsSignatureVerifier(fetch)

    def sign(self, **fields: Any) -> dict[str, Any]:
        envelope = {
            "Type": "Notification", "MessageId": "sns-1", "TopicArn": TOPIC,
            "Timestamp": "2026-05-04T10:00:00.000Z", "SignatureVersion": "2",
            "SigningCertURL": CERT_URL, **fields,
        }  # fmt: skip
        signature = self.key.sign(canonical_string(envelope), padding.PKCS1v15(), hashes.SHA256())
        return {**envelope, "Signature": base64.b64encode(signature).decode()}

    def notification(self, message: Mapping[str, Any], sns_id: str = "sns-1") -> dict[str, Any]:
        return self.sign(Message=json.dumps(message), MessageId=sns_id)


def sms(
    phone: str, text: str, inbound_id: str = "in-1", answers: str | None = None
) -> dict[str, Any]:
    """A two-way SMS payload (End User Messaging SMS -> SNS)."""
    message = {
        "originationNumber": phone,
        "destinationNumber": OUR_NUMBER,
        "messageKeyword": "KEYWORD_123456789012",
        "messageBody": text,
        "inboundMessageId": inbound_id,
    }
    if answers is not None:
        message["previousPublishedMessageId"] = answers
    return message


def whatsapp(
    messages: Sequence[Mapping[str, Any]] = (), statuses: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """An End User Messaging Social event: the AWS header around Meta's webhook entry,
    which travels as a JSON string."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": OUR_NUMBER[1:], "phone_number_id": "3210102177"},
    }
    if messages:
        value["contacts"] = [{"profile": {"name": "Diego"}, "wa_id": messages[0]["from"]}]
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    entry = {"id": "365731266123456", "changes": [{"value": value, "field": "messages"}]}
    return {
        "context": {
            "MetaWabaIds": [{"wabaId": "1234567890abcde",
                             "arn": "arn:aws:social-messaging:us-east-1:123456789012:waba/fb25"}],
            "MetaPhoneNumberIds": [{"metaPhoneNumberId": "abcde1234567890",
                                    "arn": "arn:aws:social-messaging:us-east-1:123456789012:"
                                           "phone-number-id/976c"}],
        },
        "whatsAppWebhookEntry": json.dumps(entry),
        "aws_account_id": "123456789012",
        "message_timestamp": "2026-05-04T10:00:00.271279391Z",
        "messageId": "6d69f07a-c317-4278-9d5c-6a84078419ec",
    }  # fmt: skip


def whatsapp_text(
    wa_id: str, text: str, wamid: str, at: dt.datetime, answers: str | None = None
) -> dict[str, Any]:
    """One of Meta's ``messages[]``: a text, ``context.id`` when it answers ours."""
    message: dict[str, Any] = {
        "from": wa_id,
        "id": wamid,
        "timestamp": str(int(at.timestamp())),
        "text": {"body": text},
        "type": "text",
    }
    if answers is not None:
        message["context"] = {"from": OUR_NUMBER[1:], "id": answers}
    return message


def email(
    sender: str,
    text: str,
    *,
    ses_id: str = "d6iitobk75ur44p8kdnnp7g2n800",
    in_reply_to: str | None = None,
    references: str | None = None,
    at: str = "2026-05-04T10:00:00.000Z",
    verdict: str = "PASS",
    base64_content: bool = False,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """An SES receipt rule's SNS action notification, with the whole MIME message."""
    headers = [("From", sender), ("To", "shop@example.com"), ("Subject", "Re: Your cart"),
               ("Date", "Mon, 4 May 2026 10:00:00 +0000"),
               ("Message-ID", "<CAF=reply-1@mail.example.com>"), ("MIME-Version", "1.0"),
               ("Content-Type", "text/plain; charset=UTF-8"),
               ("Content-Transfer-Encoding", "8bit"), *extra_headers]  # fmt: skip
    if in_reply_to:
        headers.append(("In-Reply-To", in_reply_to))
    if references:
        headers.append(("References", references))
    raw = "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n" + text.replace("\n", "\r\n")
    content = base64.b64encode(raw.encode()).decode() if base64_content else raw
    return {
        "notificationType": "Received",
        "receipt": {
            "timestamp": at, "processingTimeMillis": 222, "recipients": ["shop@example.com"],
            "spamVerdict": {"status": "PASS"}, "virusVerdict": {"status": "PASS"},
            "spfVerdict": {"status": verdict}, "dkimVerdict": {"status": verdict},
            "dmarcVerdict": {"status": verdict},
            "action": {"type": "SNS", "topicArn": TOPIC,
                       "encoding": "BASE64" if base64_content else "UTF8"},
        },
        "mail": {
            "timestamp": at, "source": sender, "messageId": ses_id,
            "destination": ["shop@example.com"], "headersTruncated": False,
            "headers": [{"name": n, "value": v} for n, v in headers],
            "commonHeaders": {"returnPath": sender, "from": [sender], "date": headers[3][1],
                              "to": ["shop@example.com"],
                              "messageId": "<CAF=reply-1@mail.example.com>",
                              "subject": "Re: Your cart"},
        },
        "content": content,
    }  # fmt: skip
