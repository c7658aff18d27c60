"""Messages in doubt with a provider that takes no idempotency key (SES): the dispatcher
in a subprocess, boto3 against moto (server mode, 127.0.0.1), SIGKILLed around one SES
call; then the list an operator reads, SES's signed feedback through SNS settling the
message, and the next pass. Each customer ends with exactly one email at SES."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from datetime import timedelta
from email import policy
from email.parser import Parser
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr
from sqlalchemy import Engine, select

from omni_journey.delivery import dispatch
from omni_journey.delivery.feedback import handle_sns_notification
from omni_journey.delivery.in_doubt import list_in_doubt
from omni_journey.delivery.ses import SesProvider
from omni_journey.delivery.sns_signature import SnsSignatureVerifier
from omni_journey.settings import Settings
from omni_journey.store.tables import Event
from tests.integration.delivery import test_feedback
from tests.integration.delivery.conftest import SENDER, moto_data
from tests.support.aws_proxy import AwsProxy
from tests.support.outbox import T0, add_customer, add_message, messages, simple_renderer

ROOT = Path(__file__).resolve().parents[3]
COUNT = 5
signer = test_feedback.signer  # the SNS signing key and certificate (module-wide)


def _settings(tmp: Path) -> Settings:
    return Settings(
        home=tmp / "home",
        secret_key=SecretStr("in-doubt-test-secret"),
        unsubscribe_url="https://shop.example.com/unsubscribe",
        rate_limits="",
        send_concurrency=1,
        dispatch_claim_seconds=60,
        dispatch_in_doubt="resend",
        ses_configuration_set="omni-events",
    )


_SENDER = """
import os, signal, sys
from pathlib import Path
import boto3
from botocore.config import Config
from omni_journey.delivery import dispatch
from omni_journey.delivery.ses import SesProvider
from omni_journey.store import open_store
from tests.integration.delivery.test_in_doubt import _settings
from tests.support.outbox import T0, simple_renderer

url, tmp, endpoint, point = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]
nth = int(sys.argv[5])
client = boto3.session.Session(
    aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
).client("sesv2", endpoint_url=endpoint,
         config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))
real, calls = client.send_email, []

def send_email(**request):
    calls.append(request)
    if point == "before" and len(calls) == nth:  # in flight, the request not yet sent
        os.kill(os.getpid(), signal.SIGKILL)
    answer = real(**request)
    if point == "after" and len(calls) == nth:  # SES has it; its answer is lost
        os.kill(os.getpid(), signal.SIGKILL)
    return answer

client.send_email = send_email
settings = _settings(tmp)
provider = SesProvider(client, sender="no-reply@example.com", configuration_set="omni-events",
                       concurrency=1)
dispatch(open_store(url), {"email": provider}, simple_renderer, settings=settings, now=T0,
         worker_id="crashed")
sys.exit(3)  # not killed: the test is wrong
"""


def _at_ses(moto_url: str) -> dict[str, list[str]]:
    """SES message ids by recipient, as moto stored them."""
    found: dict[str, list[str]] = {}
    for raw in moto_data(moto_url)["ses"]["RawMessage"]:
        email = Parser(policy=policy.default).parsestr(raw["raw_data"])
        found.setdefault(str(email["To"]), []).append(raw["id"])
    return found


def _ses_event(kind: str, ses_id: str, outbox_id: int, to: str) -> dict[str, Any]:
    """SES event publishing's JSON (configuration set -> SNS) for one email."""
    tags = {"omni_message": [str(outbox_id)], "ses:configuration-set": ["omni-events"]}
    mail = {"messageId": ses_id, "destination": [to], "source": SENDER, "tags": tags}
    body: dict[str, Any] = {"eventType": kind, "mail": mail}
    if kind == "Delivery":
        body["delivery"] = {"recipients": [to], "smtpResponse": "250 ok"}
    else:
        body["send"] = {}
    return body


@pytest.mark.parametrize(("point", "delivered"), [("after", True), ("before", False)])
def test_a_sender_killed_mid_call_leaves_one_message_in_doubt_and_feedback_settles_it(
    store: Engine,
    tmp_path: Path,
    aws_client: Any,
    proxy: AwsProxy,
    moto_url: str,
    signer: tuple[rsa.RSAPrivateKey, bytes],
    point: str,
    delivered: bool,
) -> None:
    aws_client("ses").verify_email_identity(EmailAddress=SENDER)
    aws_client("sesv2").create_configuration_set(ConfigurationSetName="omni-events")
    ids = {}
    for i in range(1, COUNT + 1):
        add_customer(store, f"c-{i}", email=f"c{i}@example.com")
        ids[f"k-{i}"] = add_message(store, f"k-{i}", f"c-{i}", "email")
    url = store.url.render_as_string(hide_password=False)
    store.dispose()

    killed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_SENDER), url, str(tmp_path), proxy.url, point,
         "3"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip

    assert killed.returncode == -signal.SIGKILL, killed.stderr
    rows = messages(store)
    # each message was in flight on its own: only the third is in doubt, not the batch
    assert [(k, rows[k].status) for k in ("k-1", "k-2")] == [("k-1", "sent"), ("k-2", "sent")]
    assert rows["k-3"].in_flight_since is not None and rows["k-3"].status == "claimed"
    assert [rows[k].in_flight_since for k in ("k-4", "k-5")] == [None, None]  # never sent
    at_ses = _at_ses(moto_url)
    assert sorted(at_ses) == sorted(f"c{i}@example.com" for i in (1, 2, 3)[: 3 if delivered else 2])
    later = T0 + timedelta(minutes=2)  # the dead sender's claim has expired
    with store.connect() as connection:
        listed = list_in_doubt(connection, now=later)
    assert [(m.id, m.journey, m.step, m.channel, m.state) for m in listed] == [
        (ids["k-3"], "welcome", "hello", "email", "orphaned")
    ]

    # the operator's list, from the command line: ids, never an address
    env = {**os.environ, "OMNI_DATABASE_URL": url, "OMNI_HOME": str(tmp_path / "home"),
           "OMNI_EMAIL_PROVIDER": "ses"}  # fmt: skip
    shown = subprocess.run(
        [sys.executable, "-m", "omni_journey", "messages", "in-doubt", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 1, shown.stderr  # some in doubt
    document = json.loads(shown.stdout)
    assert document["count"] == 1
    [item] = document["in_doubt"]
    assert (item["id"], item["provider"], item["state"]) == (ids["k-3"], "ses", "orphaned")
    assert item["since"] == rows["k-3"].in_flight_since.isoformat()
    assert "@" not in shown.stdout

    if delivered:  # SES publishes Send, then Delivery, for the email it accepted
        key, pem = signer
        verifier = SnsSignatureVerifier(lambda _url: pem)
        [ses_id] = at_ses["c3@example.com"]
        for n, kind in enumerate(("Send", "Delivery")):
            envelope = test_feedback._envelope(
                key, _ses_event(kind, ses_id, ids["k-3"], "c3@example.com"), f"sns-{n}"
            )
            handle_sns_notification(store, json.dumps(envelope), now=later, verifier=verifier,
                                    accepted_topics={test_feedback.TOPIC})  # fmt: skip
        row = messages(store)["k-3"]
        assert (row.status, row.provider_message_id, row.in_flight_since) == ("sent", ses_id, None)
        with store.connect() as connection:
            assert list_in_doubt(connection, now=later) == []

    settings = _settings(tmp_path)
    provider = SesProvider(aws_client("sesv2"), sender=SENDER, configuration_set="omni-events",
                           concurrency=1)  # fmt: skip
    report = dispatch(store, {"email": provider}, simple_renderer, settings=settings, now=later,
                      worker_id="w2", clock=lambda: 0.0, sleep=lambda _s: None)  # fmt: skip

    # exactly once: settled by feedback it is not sent again; never delivered, it is
    # resent (OMNI_DISPATCH_IN_DOUBT=resend); the two never sent are sent
    assert (report.claimed, report.in_doubt) == ((2, 0) if delivered else (3, 1))
    at_ses = _at_ses(moto_url)
    assert Counter({to: len(sent) for to, sent in at_ses.items()}) == Counter(
        {f"c{i}@example.com": 1 for i in range(1, COUNT + 1)}
    )
    rows = messages(store)
    assert {rows[k].status for k in ids} == {"sent"}
    with store.connect() as connection:
        sent = connection.execute(
            select(Event.event_id).where(Event.name == "message.sent")  # type: ignore[arg-type]
        ).scalars().all()  # fmt: skip
        assert list_in_doubt(connection, now=later) == []
    assert sorted(sent) == sorted(f"message.sent:{i}" for i in ids.values())


def test_feedback_settles_messages_failed_in_doubt(
    store: Engine, tmp_path: Path, signer: tuple[rsa.RSAPrivateKey, bytes]
) -> None:
    """With OMNI_DISPATCH_IN_DOUBT=fail a message in doubt is failed at once; SES's word
    on it afterwards settles it: delivered -> sent, permanently bounced -> failed as such.
    Feedback about a message that is not in doubt changes no status."""
    from omni_journey.delivery.outbox import claim, mark_in_flight
    from tests.support.outbox import RecordingProvider

    ids = {}
    for i in (1, 2, 3):
        add_customer(store, f"c-{i}", email=f"c{i}@example.com")
        ids[i] = add_message(store, f"k-{i}", f"c-{i}", "email")
    claim(store, worker_id="crashed", now=T0, until=T0 + timedelta(minutes=1), limit=10)
    mark_in_flight(store, [ids[1], ids[2]], worker_id="crashed", at=T0)  # then it died
    settings = _settings(tmp_path).model_copy(update={"dispatch_in_doubt": "fail"})
    provider = RecordingProvider()
    later = T0 + timedelta(minutes=2)
    report = dispatch(store, {"email": provider}, simple_renderer, settings=settings, now=later,
                      worker_id="w2", clock=lambda: 0.0, sleep=lambda _s: None)  # fmt: skip
    assert (report.in_doubt, report.failed, report.sent) == (2, 2, 1)
    with store.connect() as connection:
        listed = list_in_doubt(connection, now=later)
    assert [(m.id, m.state, m.provider, m.since) for m in listed] == [
        (ids[1], "failed", "memory", T0), (ids[2], "failed", "memory", T0)
    ]  # fmt: skip

    key, pem = signer
    verifier = SnsSignatureVerifier(lambda _url: pem)

    def notify(body: dict[str, Any], sns_id: str) -> None:
        envelope = test_feedback._envelope(key, body, sns_id)
        handle_sns_notification(store, envelope, now=later, verifier=verifier,
                                accepted_topics={test_feedback.TOPIC})  # fmt: skip

    notify(_ses_event("Delivery", "ses-1", ids[1], "c1@example.com"), "sns-1")
    bounce = test_feedback._bounce("ses-2", "c2@example.com")
    bounce["mail"]["tags"] = {"omni_message": [str(ids[2])]}
    notify(bounce, "sns-2")
    notify(_ses_event("Delivery", "ses-3", ids[3], "c3@example.com"), "sns-3")  # not in doubt

    rows = messages(store)
    assert (rows["k-1"].status, rows["k-1"].provider_message_id) == ("sent", "ses-1")
    assert (rows["k-2"].status, rows["k-2"].error) == ("failed", "ses: bounced")
    assert (rows["k-3"].status, rows["k-3"].provider_message_id) == ("sent", f"memory-{ids[3]}")
    with store.connect() as connection:
        assert list_in_doubt(connection, now=later) == []
        events = connection.execute(
            select(Event.event_id, Event.properties).where(
                Event.name.in_(("message.sent", "message.delivered"))  # type: ignore[attr-defined]
            )
        ).all()
    reconciled = {e.event_id for e in events if e.properties.get("reconciled")}
    assert reconciled == {f"message.sent:{ids[1]}"}
