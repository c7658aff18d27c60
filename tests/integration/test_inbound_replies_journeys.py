"""Replies drive journeys: ``message.replied`` as a trigger, in ``wait_for`` and in
``exit_when``, through the real store (SQLite and PostgreSQL), the runner, the
dispatcher (SMS through boto3 against a moto server, email to the file outbox) and
signed SNS notifications of the replies, matched to the messages they answer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from sqlalchemy import Engine, select

from omni_journey.delivery import dispatch
from omni_journey.delivery.feedback import FeedbackResult, handle_sns_notification
from omni_journey.delivery.file import FileProvider
from omni_journey.delivery.sms import SnsSmsProvider
from omni_journey.runner.passes import JourneyRunner
from omni_journey.settings import Settings
from omni_journey.store.core import ENROLLMENTS, EVENTS, MESSAGES
from tests.integration.engine.conftest import T0, Shop, event, journey, profile
from tests.support.inbound import TOPIC, SnsSigner, email, sms, whatsapp, whatsapp_text
from tests.support.outbox import simple_renderer

SENDER = "shop@example.com"
PHONES = {"ana": "+4915112340001", "ben": "+4915112340002", "cy": "+4915112340003",
          "dee": "+4915112340004"}  # fmt: skip

REVIEW = journey(
    {
        "key": "review",
        "trigger": {"event": "order.completed"},
        # leave the journey when the customer writes back by email
        "exit_when": [{"event": "message.replied", "where": {"channel": "email"}}],
        "steps": [
            {"id": "ask", "type": "send", "message": "review_request", "channel": "sms"},
            {"id": "answered", "type": "wait_for", "event": "message.replied",
             "where": {"channel": "sms"}, "timeout": "2d", "on_event": "thank",
             "on_timeout": "remind"},
            {"id": "remind", "type": "send", "message": "review_reminder", "channel": "email",
             "next": "pause"},
            {"id": "pause", "type": "delay", "for": "3d", "next": "last_call"},
            {"id": "last_call", "type": "send", "message": "review_last_call",
             "channel": "email", "next": "done"},
            {"id": "thank", "type": "send", "message": "review_thanks", "channel": "sms",
             "next": "done"},
            {"id": "done", "type": "exit", "reason": "review_over"},
        ],
    }
)  # fmt: skip
CONCIERGE = journey(
    {
        "key": "concierge",
        "trigger": {"event": "message.replied", "where": {"channel": "whatsapp"}},
        "steps": [{"id": "ack", "type": "send", "message": "we_read_you", "channel": "email"}],
    }
)


@pytest.fixture(scope="module")
def sns_client() -> Iterator[Any]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    yield session.client("sns", endpoint_url=f"http://{host}:{port}")  # type: ignore[call-overload]
    server.stop()


class World:
    """The shop, its runner, its dispatcher and the customers' phones and mailboxes."""

    def __init__(self, engine: Engine, tmp: Path, sns_client: Any) -> None:
        self.settings = Settings(home=tmp / "home", unsubscribe_url="https://shop.example.com/u",
                                 rate_limits="", email_from=SENDER)  # fmt: skip
        self.shop = Shop(engine, self.settings)
        self.runner = JourneyRunner(engine, {"review": REVIEW, "concierge": CONCIERGE}, {})
        self.providers = {
            "sms": SnsSmsProvider(sns_client, concurrency=1),
            "email": FileProvider(self.settings.outbox_dir, sender=SENDER),
        }
        self.signer = SnsSigner.create()
        self.verifier = self.signer.verifier()

    def dispatch(self, at: datetime) -> None:
        report = dispatch(self.shop.engine, self.providers, simple_renderer, now=at,
                          settings=self.settings, worker_id="w1", clock=lambda: 0.0,
                          sleep=lambda _s: None)  # fmt: skip
        assert report.failed == 0

    def notify(self, message: dict[str, Any], sns_id: str, at: datetime) -> FeedbackResult:
        """One signed SNS notification, as the collector hands it on."""
        return handle_sns_notification(
            self.shop.engine, self.signer.notification(message, sns_id), now=at,
            verifier=self.verifier, accepted_topics={TOPIC},
        )  # fmt: skip

    def sent(self) -> dict[tuple[str, str], Any]:
        return {(m.customer_id, m.step_id): m for m in self.shop.messages()}

    def message_id_header(self, to: str) -> str:
        """The Message-ID of the email the file outbox wrote to ``to``."""
        for path in sorted((self.settings.outbox_dir / "email").glob("*.eml")):
            mail = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
            if mail["To"] == to:
                return str(mail["Message-ID"])
        raise AssertionError(f"no email to {to}")


def test_replies_trigger_journeys_end_waits_and_exit_customers(
    store: Engine, tmp_path: Path, sns_client: Any
) -> None:
    world = World(store, tmp_path, sns_client)
    consent = {"email": True, "sms": True, "push": False, "whatsapp": True}
    world.shop.profiles([profile(c, phone=p, consent=consent) for c, p in PHONES.items()],
                        now=T0 - timedelta(days=1))  # fmt: skip
    world.shop.events([event(f"o-{c}", "order.completed", c, T0) for c in ("ana", "ben", "cy")])
    world.runner.run(T0 + timedelta(minutes=1))
    world.dispatch(T0 + timedelta(minutes=2))
    asks = {c: world.sent()[(c, "ask")] for c in ("ana", "ben", "cy")}
    assert {m.status for m in asks.values()} == {"sent"}

    # ana answers the SMS (two-way SMS names the message she answers); dee writes on WhatsApp
    hour = T0 + timedelta(hours=1)
    reply = sms(PHONES["ana"], "5 stars, love it", "in-ana",
                answers=asks["ana"].provider_message_id)  # fmt: skip
    assert world.notify(reply, "sns-1", hour).replied == 1
    dee = whatsapp([whatsapp_text(PHONES["dee"][1:], "Do you ship to Vienna?", "wamid.D1", hour)])
    assert world.notify(dee, "sns-2", hour).replied == 1
    world.runner.run(hour + timedelta(minutes=1))

    sent = world.sent()
    assert ("ana", "thank") in sent  # the wait ended on her reply
    assert ("dee", "ack") in sent  # a WhatsApp message entered dee into concierge
    assert ("ana", "ack") not in sent  # an SMS reply does not (where: channel whatsapp)

    # two days on: ben and cy never answered and get the email reminder
    later = T0 + timedelta(days=2, minutes=2)
    world.runner.run(later)
    world.dispatch(later + timedelta(minutes=1))
    assert {c for (c, step) in world.sent() if step == "remind"} == {"ben", "cy"}

    # ben answers the reminder by email: he leaves the journey (exit_when)
    answer = email("Ben <ben@example.com>", "Stop asking, it was fine.", ses_id="ses-ben",
                   in_reply_to=world.message_id_header("ben@example.com"),
                   at=(later + timedelta(hours=1)).isoformat())  # fmt: skip
    assert world.notify(answer, "sns-3", later + timedelta(hours=1)).replied == 1
    world.runner.run(T0 + timedelta(days=5, minutes=3))

    sent = world.sent()
    assert sorted(step for (c, step) in sent if c == "ben") == ["ask", "remind"]
    assert sorted(step for (c, step) in sent if c == "cy") == ["ask", "last_call", "remind"]
    with store.connect() as connection:
        ends = dict(connection.execute(
            select(ENROLLMENTS.c.customer_id, ENROLLMENTS.c.end_reason)
            .where(ENROLLMENTS.c.journey_key == "review")
        ).all())  # fmt: skip
        replies = {
            e.customer_id: e.properties
            for e in connection.execute(select(EVENTS).where(EVENTS.c.name == "message.replied"))
        }
        remind = connection.execute(
            select(MESSAGES.c.id).where(MESSAGES.c.customer_id == "ben",
                                        MESSAGES.c.step_id == "remind")
        ).scalar_one()  # fmt: skip
    assert ends["ben"] == "exit_when:message.replied"
    # each reply names the message it answers: by the provider's id, by our Message-ID
    assert (replies["ana"]["in_reply_to"], replies["ana"]["matched_by"]) == (
        asks["ana"].id, "provider_message_id"
    )  # fmt: skip
    assert (replies["ben"]["in_reply_to"], replies["ben"]["journey"]) == (remind, "review")
    assert replies["ben"]["text"] == "Stop asking, it was fine."
    assert (replies["dee"]["channel"], replies["dee"]["in_reply_to"]) == ("whatsapp", None)
