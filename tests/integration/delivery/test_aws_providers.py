"""SES, SNS, End User Messaging SMS and WhatsApp through boto3 against moto (server mode)
and our stand-in in front of it: real HTTP, real botocore parsing and retries."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from email import policy
from email.parser import Parser
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from omni_journey.delivery import dispatch
from omni_journey.delivery.ses import SesProvider
from omni_journey.delivery.sms import SmsVoiceV2Provider, SnsSmsProvider
from omni_journey.delivery.whatsapp import WhatsAppProvider
from omni_journey.links import LinkSigner
from omni_journey.settings import Settings
from tests.integration.delivery.conftest import SENDER, moto_data
from tests.support.aws_proxy import AwsProxy
from tests.support.outbox import T0, add_customer, add_message, messages, simple_renderer

ClientFactory = Callable[..., Any]


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path / "home",
        unsubscribe_url="https://shop.example.com/unsubscribe",
        rate_limits="",
        send_concurrency=2,
    )


def _run(
    engine: Engine, providers: dict[str, Any], settings: Settings, at: timedelta = timedelta(0)
) -> Any:
    return dispatch(engine, providers, simple_renderer, now=T0 + at, settings=settings,
                    worker_id="w1", clock=lambda: 0.0, sleep=lambda _s: None)  # fmt: skip


def _ses(aws_client: ClientFactory, max_attempts: int = 1) -> SesProvider:
    aws_client("ses").verify_email_identity(EmailAddress=SENDER)
    sesv2 = aws_client("sesv2", max_attempts)
    sesv2.create_configuration_set(ConfigurationSetName="omni-events")
    return SesProvider(sesv2, sender=SENDER, configuration_set="omni-events", concurrency=2)


def test_ses_sends_raw_mime_with_one_click_unsubscribe(
    sqlite_store: Engine, tmp_path: Path, aws_client: ClientFactory, proxy: AwsProxy, moto_url: str
) -> None:
    settings = _settings(tmp_path)
    provider = _ses(aws_client)
    add_customer(sqlite_store, "c-1", email="ana@example.com", attributes={"first_name": "Ana"})
    add_message(sqlite_store, "k-1", "c-1", "email")

    report = _run(sqlite_store, {"email": provider}, settings)

    assert report.sent == 1
    [raw] = moto_data(moto_url)["ses"]["RawMessage"]
    row = messages(sqlite_store)["k-1"]
    assert row.provider == "ses" and row.provider_message_id == raw["id"]
    email = Parser(policy=policy.default).parsestr(raw["raw_data"])
    assert email["To"] == "ana@example.com" and email["From"] == SENDER
    assert email["Subject"] == "Hello Ana"
    link = email["List-Unsubscribe"]
    assert LinkSigner.from_settings(settings).verify(link[1:-1]).customer_id == "c-1"
    # unencoded and on one line in the raw message SES stored, as mail clients need it
    assert f"List-Unsubscribe: {link}" in raw["raw_data"].splitlines()
    assert len(f"List-Unsubscribe: {link}") > 78  # where Python's folder used to encode it
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert email.get_body(("html",)) is not None and email.get_body(("plain",)) is not None


def test_ses_unverified_sender_fails_the_message_without_suppressing(
    sqlite_store: Engine, tmp_path: Path, aws_client: ClientFactory, proxy: AwsProxy
) -> None:
    provider = SesProvider(aws_client("sesv2"), sender="unverified@example.com")
    add_customer(sqlite_store, "c-1", email="ana@example.com")
    add_message(sqlite_store, "k-1", "c-1", "email")

    report = _run(sqlite_store, {"email": provider}, _settings(tmp_path))

    assert report.failed == 1
    row = messages(sqlite_store)["k-1"]
    assert row.error.startswith("ses: MessageRejected")
    assert "unverified@example.com" not in row.error  # addresses are scrubbed
    assert report.errors == {"ses:MessageRejected": 1}


def test_ses_throttling_is_retried_by_botocore_then_sent(
    sqlite_store: Engine,
    tmp_path: Path,
    aws_client: ClientFactory,
    proxy: AwsProxy,
    botocore_sleeps: list[float],
) -> None:
    provider = _ses(aws_client, max_attempts=3)
    proxy.fail("ses", 429, "TooManyRequestsException", "Maximum sending rate exceeded.")
    add_customer(sqlite_store, "c-1", email="ana@example.com")
    add_message(sqlite_store, "k-1", "c-1", "email")

    report = _run(sqlite_store, {"email": provider}, _settings(tmp_path))

    assert report.sent == 1
    sends = [p for s, p in proxy.calls if p == "/v2/email/outbound-emails"]
    assert len(sends) == 2 and len(botocore_sleeps) == 1


def test_ses_throttling_beyond_botocore_retries_is_retried_later(
    sqlite_store: Engine, tmp_path: Path, aws_client: ClientFactory, proxy: AwsProxy
) -> None:
    provider = _ses(aws_client, max_attempts=1)
    proxy.fail("ses", 429, "TooManyRequestsException", "Maximum sending rate exceeded.")
    add_customer(sqlite_store, "c-1", email="ana@example.com")
    add_message(sqlite_store, "k-1", "c-1", "email")

    report = _run(sqlite_store, {"email": provider}, _settings(tmp_path))

    assert report.retried == 1
    row = messages(sqlite_store)["k-1"]
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.send_after == T0 + timedelta(seconds=60)


def test_ses_daily_quota_pauses_sending_instead_of_looping(
    sqlite_store: Engine, tmp_path: Path, aws_client: ClientFactory, proxy: AwsProxy
) -> None:
    provider = _ses(aws_client, max_attempts=1)
    provider.concurrency = 1
    proxy.fail("ses", 400, "LimitExceededException", "Daily message quota exceeded.", times=100)
    for i in range(30):
        add_customer(sqlite_store, f"c-{i}", email=f"c{i}@example.com")
        add_message(sqlite_store, f"k-{i}", f"c-{i}", "email")

    settings = _settings(tmp_path)
    report = _run(sqlite_store, {"email": provider}, settings)

    sends = [p for s, p in proxy.calls if p == "/v2/email/outbound-emails"]
    # one message a call, each in flight on its own: only the calls already under way
    # when the first answer said "paused" (OMNI_SEND_CONCURRENCY), then none
    assert len(sends) == settings.send_concurrency
    assert report.paused == {"ses": "LimitExceededException"} and report.sent == 0
    rows = messages(sqlite_store).values()
    assert {(r.status, r.attempts) for r in rows} == {("pending", 0)}
    assert {r.send_after for r in rows} == {T0 + timedelta(hours=1)}


def test_sns_sms_to_e164_numbers_and_a_bad_number_fails_alone(
    sqlite_store: Engine, tmp_path: Path, aws_client: ClientFactory, proxy: AwsProxy, moto_url: str
) -> None:
    provider = SnsSmsProvider(aws_client("sns"), origination="+15005550006")
    add_customer(sqlite_store, "c-1", phone="+4915112345678")
    add_customer(sqlite_store, "c-2", phone="+49 151 1234")
    add_message(sqlite_store, "k-1", "c-1", "sms")
    add_message(sqlite_store, "k-2", "c-2", "sms")

    report = _run(sqlite_store, {"sms": provider}, _settings(tmp_path))

    assert (report.sent, report.failed) == (1, 1)
    [sms] = moto_data(moto_url)["sns"]["SMS"]
    assert sms["phone_number"] == "+4915112345678" and sms["message"] == "Hello there"
    assert messages(sqlite_store)["k-1"].provider_message_id == sms["message_id"]


def test_sns_errors_in_the_query_protocol_are_mapped(
    sqlite_store: Engine, tmp_path: Path, aws_client: ClientFactory, proxy: AwsProxy
) -> None:
    provider = SnsSmsProvider(aws_client("sns"))
    proxy.fail("sns", 400, "Throttling", "Rate exceeded")
    proxy.fail("sns", 400, "InvalidParameter", "Invalid parameter: PhoneNumber Reason: blocked")
    add_customer(sqlite_store, "c-1", phone="+4915112345678")
    add_customer(sqlite_store, "c-2", phone="+4915112345679")
    add_message(sqlite_store, "k-1", "c-1", "sms")
    add_message(sqlite_store, "k-2", "c-2", "sms")
    provider.concurrency = 1

    report = _run(sqlite_store, {"sms": provider}, _settings(tmp_path))

    assert (report.retried, report.failed) == (1, 1)
    rows = messages(sqlite_store)
    assert rows["k-1"].status == "pending" and rows["k-1"].error.startswith("sns: Throttling")
    assert rows["k-2"].status == "failed" and rows["k-2"].error.startswith("sns: InvalidParameter")


def test_end_user_messaging_sms_through_the_stand_in(
    sqlite_store: Engine, tmp_path: Path, aws_client: ClientFactory, proxy: AwsProxy
) -> None:
    provider = SmsVoiceV2Provider(
        aws_client("pinpoint-sms-voice-v2"), origination_identity="+15005550006",
        configuration_set="omni",
    )  # fmt: skip
    proxy.fail("sms-voice", 400, "ThrottlingException", "slow down")
    add_customer(sqlite_store, "c-1", phone="+4915112345678")
    add_customer(sqlite_store, "c-2", phone="+4915112345679")
    add_message(sqlite_store, "k-1", "c-1", "sms")
    add_message(sqlite_store, "k-2", "c-2", "sms")
    provider.concurrency = 1

    report = _run(sqlite_store, {"sms": provider}, _settings(tmp_path))

    assert (report.sent, report.retried) == (1, 1)
    [sent] = proxy.sms
    assert sent["DestinationPhoneNumber"] == "+4915112345679"
    assert sent["OriginationIdentity"] == "+15005550006"
    assert sent["MessageType"] == "PROMOTIONAL" and sent["ConfigurationSetName"] == "omni"
    assert messages(sqlite_store)["k-2"].provider_message_id == sent["MessageId"]


def test_whatsapp_free_text_inside_the_window_template_outside(
    sqlite_store: Engine, tmp_path: Path, aws_client: ClientFactory, proxy: AwsProxy
) -> None:
    from omni_journey.store.tables import Event

    provider = WhatsAppProvider(aws_client("socialmessaging"), phone_number_id="phone-number-id-1")
    add_customer(sqlite_store, "c-in", phone="+4915112345678")
    add_customer(sqlite_store, "c-out", phone="+4915112345679")
    with sqlite_store.begin() as connection:
        connection.execute(
            Event.__table__.insert(),  # type: ignore[attr-defined]
            [{"event_id": "wa-1", "name": "whatsapp.received", "customer_id": "c-in",
              "at": T0 - timedelta(hours=1), "received_at": T0, "properties": {}}],
        )  # fmt: skip
    add_message(sqlite_store, "k-in", "c-in", "whatsapp")
    add_message(sqlite_store, "k-out", "c-out", "whatsapp")

    report = _run(sqlite_store, {"whatsapp": provider}, _settings(tmp_path))

    assert report.sent == 2
    sent = {m["message"]["to"]: m for m in proxy.whatsapp}
    inside = sent["+4915112345678"]["message"]
    outside = sent["+4915112345679"]["message"]
    assert inside["type"] == "text" and inside["text"]["body"] == "Hello there"
    assert outside["type"] == "template" and outside["template"]["name"] == "hello_v1"
    assert outside["template"]["components"][0]["parameters"] == [{"type": "text", "text": "there"}]
    assert sent["+4915112345678"]["originationPhoneNumberId"] == "phone-number-id-1"
    assert json.dumps(proxy.whatsapp)  # all recorded as JSON


def test_whatsapp_throttling_is_transient(
    sqlite_store: Engine, tmp_path: Path, aws_client: ClientFactory, proxy: AwsProxy
) -> None:
    provider = WhatsAppProvider(aws_client("socialmessaging"), phone_number_id="phone-number-id-1")
    proxy.fail("social-messaging", 429, "ThrottledRequestException", "slow down")
    add_customer(sqlite_store, "c-1", phone="+4915112345678")
    add_message(sqlite_store, "k-1", "c-1", "whatsapp")

    report = _run(sqlite_store, {"whatsapp": provider}, _settings(tmp_path))

    assert report.retried == 1 and proxy.whatsapp == []
