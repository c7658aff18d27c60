"""One customer, one history: a whole story through the real parts on a real SQLite file
and a real PostgreSQL database, then read back with ``omni-journey customers show`` and
``omni-journey explain``.

Ana browses anonymously and identifies with her email through the collector (Segment
Spec calls); a cart reminder goes out by email; she adds a phone with SMS consent; the
shop's CRM knew her under another id, and an ``alias`` merges that profile into hers (an
``identify`` alone is refused); her order at night starts a second journey whose
WhatsApp step is skipped (no WhatsApp consent) and whose SMS waits for the end of quiet
hours; she answers the SMS (a signed SNS notification on ``/inbound/sms``) and the reply
takes her out of that journey. Passes and dispatch run through ``omni-journey run
--now`` (file outbox); the commands run in-process on the same store.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from sqlalchemy import Engine, select
from starlette.applications import Starlette
from typer.testing import CliRunner

from omni_journey.cli import app
from omni_journey.collector.app import create_app
from omni_journey.settings import Settings
from omni_journey.store import open_store
from omni_journey.store.core import CUSTOMERS, ENROLLMENTS, MESSAGES
from tests.integration.engine.conftest import T0
from tests.support.inbound import TOPIC, SnsSigner, sms

ROOT = Path(__file__).resolve().parents[3]
WRITE_KEY = "wk-one-history"
PHONE = "+4915112345678"

CART = """\
key: cart_followup
name: Cart follow-up
trigger: {event: product.added}
entry: {re_entry: never}
goal: {event: order.completed, within: 3d}
steps:
  - {id: remind, type: send, message: cart_reminder, channel: email}
  - {id: bought, type: wait_for, event: order.completed, timeout: 2d}
"""
# the SMS journey: quiet at night in the customer's zone, left when she answers a text
REVIEW = """\
key: order_review
name: Order review
trigger: {event: order.completed}
entry: {re_entry: never}
quiet_hours: {start: "21:00", end: "08:00"}
exit_when:
  - {event: message.replied, where: {channel: sms}}
steps:
  - {id: chat, type: send, message: order_thanks, channel: whatsapp}
  - {id: ask, type: send, message: order_thanks, channel: sms}
  - {id: pause, type: delay, for: 2d}
  - {id: remind, type: send, message: order_thanks, channel: sms}
"""

# The story's times (T0 is Monday 2026-05-04 10:00 UTC, 12:00 in Berlin).
BROWSED = T0 - timedelta(hours=2)
IDENTIFIED = T0 - timedelta(hours=1)
PHONE_ADDED = T0 + timedelta(minutes=30)
MERGED = T0 + timedelta(minutes=40)
ORDERED = T0 + timedelta(hours=11)  # 23:00 in Berlin: quiet hours
MORNING = T0 + timedelta(hours=20)  # Tuesday 08:00 in Berlin: quiet hours end
REPLIED = T0 + timedelta(hours=21)


def _at(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class Story:
    engine: Engine
    http: httpx.Client
    signer: SnsSigner
    clock: list[datetime]  # the collector's "now", moved along the story

    def call(self, path: str, body: dict[str, Any], at: datetime) -> dict[str, Any]:
        self.clock[0] = at
        response = self.http.post(path, json=body, auth=(WRITE_KEY, ""))
        assert response.status_code == 200, response.text
        return dict(response.json())

    def refused(self, path: str, body: dict[str, Any], at: datetime) -> dict[str, Any]:
        self.clock[0] = at
        response = self.http.post(path, json=body, auth=(WRITE_KEY, ""))
        assert response.status_code == 400, response.text
        return dict(response.json())

    def reply(self, message: dict[str, Any], sns_id: str, at: datetime) -> dict[str, Any]:
        """A signed SNS notification of an inbound SMS, as AWS posts it."""
        self.clock[0] = at
        response = self.http.post("/inbound/sms", json=self.signer.notification(message, sns_id))
        assert response.status_code == 200, response.text
        return dict(response.json())

    def messages(self) -> dict[str, Any]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(MESSAGES).order_by(MESSAGES.c.id))
            return {f"{r.journey_key}/{r.step_id}": r for r in rows}


def cli(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, f"{args}: {result.output}{result.exception!r}"
    return result


def run_pass(at: datetime) -> None:
    """One pass of every journey, then dispatch (the file outbox), at ``at``."""
    cli("run", "--now", _at(at))


@contextmanager
def serving(collector: Starlette) -> Iterator[str]:
    """The collector on a real uvicorn server in a thread, on a free port; its URL."""
    config = uvicorn.Config(collector, host="127.0.0.1", port=0, ws="none", lifespan="off",
                            log_config=None, log_level="warning")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="collector", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the collector did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def opened_story(store: Engine, folder: Path, patch: pytest.MonkeyPatch) -> Iterator[Story]:
    """A project folder with the two journeys and the repository's templates, the
    command's settings in the environment, and the collector serving ``store``."""
    project = folder / "project"
    (project / "journeys").mkdir(parents=True)
    (project / "journeys" / "cart_followup.yaml").write_text(CART)
    (project / "journeys" / "order_review.yaml").write_text(REVIEW)
    shutil.copytree(ROOT / "templates", project / "templates")
    url = store.url.render_as_string(hide_password=False)
    environment = {
        "OMNI_HOME": str(folder / "home"),
        "OMNI_PROJECT_DIR": str(project),
        "OMNI_DATABASE_URL": url,
        "OMNI_DEFAULT_REGION": "DE",
        "OMNI_SECRET_KEY": "one-history-link-secret-0123456789",
        "OMNI_EMAIL_FROM": "shop@example.com",
        "OMNI_UNSUBSCRIBE_URL": "https://shop.example.com/u",
        "COLUMNS": "250",
    }
    for name, value in environment.items():
        patch.setenv(name, value)
    settings = Settings(
        home=folder / "home", project_dir=project, database_url=url, default_region="DE",
        write_keys=WRITE_KEY, feedback_topic_arns=TOPIC,
        secret_key=SecretStr(environment["OMNI_SECRET_KEY"]),
    )  # fmt: skip
    clock = [BROWSED]
    signer = SnsSigner.create()
    collector = create_app(store, settings, lambda: clock[0], sns_verifier=signer.verifier())
    with serving(collector) as base, httpx.Client(base_url=base, timeout=30) as http:
        yield Story(store, http, signer, clock)


@pytest.fixture
def story(store: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Story]:
    """The story's setting on a real SQLite file, then a real PostgreSQL database."""
    with opened_story(store, tmp_path, monkeypatch) as opened:
        yield opened


@pytest.fixture(scope="module")
def told(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    """The whole story told once on a real SQLite file, for the checks below that read
    it and need no second database."""
    folder = tmp_path_factory.mktemp("one-history")
    engine = open_store(f"sqlite:///{folder / 'omni.db'}")
    with pytest.MonkeyPatch.context() as patch, opened_story(engine, folder, patch) as opened:
        tell_the_story(opened)
        yield opened
    engine.dispose()


def tell_the_story(story: Story) -> None:
    # anonymous browsing, then an identify with her email: the browsing joins her
    for n, sku in enumerate(("SERUM-30", "CREAM-50")):
        story.call("/v1/track", {"type": "track", "messageId": f"view-{n}", "anonymousId": "anon-9",
                                 "event": "Product Viewed", "timestamp": _at(BROWSED),
                                 "properties": {"product_id": sku}}, BROWSED)  # fmt: skip
    story.call("/v1/identify", {"userId": "ana", "anonymousId": "anon-9",
                                "traits": {"email": "ana@example.com", "firstName": "Ana",
                                           "consent": {"email": True}},
                                "context": {"timezone": "Europe/Berlin"},
                                "timestamp": _at(IDENTIFIED)}, IDENTIFIED)  # fmt: skip
    # the shop's CRM knows her under its own id, from a visit in store
    crm_day = T0 - timedelta(days=3)
    story.call("/v1/identify", {"userId": "crm-77", "anonymousId": "kiosk-5",
                                "traits": {"email": "ana.work@example.com"},
                                "timestamp": _at(crm_day)}, crm_day)  # fmt: skip
    story.call("/v1/track", {"type": "track", "messageId": "visit-1", "userId": "crm-77",
                             "event": "store.visited", "timestamp": _at(crm_day),
                             "properties": {"store": "Berlin Mitte"}}, crm_day)  # fmt: skip

    # a product in the cart: the email journey sends its reminder
    story.call("/v1/track", {"type": "track", "messageId": "add-1", "userId": "ana",
                             "event": "Product Added", "timestamp": _at(T0),
                             "properties": {"product_id": "SERUM-30"}}, T0)  # fmt: skip
    run_pass(T0 + timedelta(minutes=1))

    # later she adds a phone, with SMS consent
    phone = {"phone": PHONE, "consent": {"sms": True}}
    story.call("/v1/identify", {"userId": "ana", "traits": phone,
                                "timestamp": _at(PHONE_ADDED)}, PHONE_ADDED)  # fmt: skip
    # an identify never merges two customers known by their own ids; an alias does
    kiosk = {"userId": "ana", "anonymousId": "kiosk-5", "timestamp": _at(MERGED)}
    assert story.refused("/v1/identify", kiosk, MERGED)["reason"] == "identity-conflict"
    story.call("/v1/alias", {"userId": "ana", "previousId": "kiosk-5",
                             "timestamp": _at(MERGED)}, MERGED)  # fmt: skip

    # her order at 23:00 in Berlin: the SMS journey starts in quiet hours
    story.call("/v1/track", {"type": "track", "messageId": "order-1", "userId": "ana",
                             "event": "Order Completed", "timestamp": _at(ORDERED),
                             "properties": {"order_id": "O-1", "revenue": 24.0}},
               ORDERED)  # fmt: skip
    run_pass(ORDERED + timedelta(minutes=1))
    run_pass(MORNING + timedelta(minutes=1))  # quiet hours over: the SMS goes out

    ask = story.messages()["order_review/ask"]
    assert (ask.channel, ask.status) == ("sms", "sent")
    answer = sms(PHONE, "Got it, thank you!", "in-1", answers=ask.provider_message_id)
    assert story.reply(answer, "sns-1", REPLIED)["replied"] == 1
    run_pass(REPLIED + timedelta(minutes=1))  # the reply ends her review journey
    run_pass(T0 + timedelta(days=3))  # no reminder after she left


def test_one_customer_one_history_across_channels_journeys_and_merges(story: Story) -> None:
    tell_the_story(story)
    sent = story.messages()
    assert sorted(sent) == ["cart_followup/remind", "order_review/ask"]  # no reminder
    assert {m.status for m in sent.values()} == {"sent"}
    with story.engine.connect() as connection:
        customers = connection.execute(select(CUSTOMERS.c.id, CUSTOMERS.c.merged_into))
        merged = {row.id: row.merged_into for row in customers}
        enrollments = connection.execute(
            select(ENROLLMENTS.c.journey_key, ENROLLMENTS.c.end_reason)
        )
        ends = {row.journey_key: row.end_reason for row in enrollments}
    assert merged["crm-77"] == "ana" and merged["ana"] is None
    assert ends["order_review"] == "exit_when:message.replied"

    # --- customers show --json: found by any of her keys, the merged CRM id included
    for key in ("anon-9", "crm-77", "0151 12345678", "ana.work@example.com"):
        again = json.loads(cli("customers", "show", key, "--json", "--limit", "1").stdout)
        assert again["customer"]["customer_id"] == "ana", key
    shown = json.loads(cli("customers", "show", "ana@example.com", "--json",
                           "--limit", "200").stdout)  # fmt: skip
    assert shown["page"]["more"] is False
    profile = shown["customer"]
    assert (profile["email"], profile["phone"], profile["timezone"]) == (
        "ana@example.com", PHONE, "Europe/Berlin")  # fmt: skip
    assert "crm-77" in shown["merged_ids"]
    identities = {(i["kind"], i["value"]) for i in shown["identities"]}
    assert {("anonymous_id", "anon-9"), ("anonymous_id", "kiosk-5"), ("phone", PHONE),
            ("email", "ana.work@example.com")} <= identities  # fmt: skip

    consent = shown["consent"]
    assert consent["email"]["granted"] is True and consent["sms"]["granted"] is True
    assert consent.get("whatsapp", {}).get("granted") is not True
    [sms_change] = consent["sms"]["history"]
    assert (sms_change["value"], sms_change["previous"]) == (True, None)
    assert datetime.fromisoformat(sms_change["at"]) == PHONE_ADDED  # when she said it
    assert [c["value"] for c in consent["email"]["history"]] == [True]

    timeline = shown["timeline"]
    ats = [datetime.fromisoformat(i["at"]) for i in timeline]
    assert ats == sorted(ats, reverse=True)  # newest first
    assert {i["kind"] for i in timeline} >= {"event", "message", "journey", "consent"}
    events = {(i["name"], i["detail"]["event_id"]) for i in timeline if i["kind"] == "event"}
    assert {("product.viewed", "view-0"), ("product.viewed", "view-1")} <= events  # anonymous
    assert ("store.visited", "visit-1") in events  # the merged profile's
    assert {("product.added", "add-1"), ("order.completed", "order-1")} <= events
    assert ("message.replied", "message.replied:sms:in-1") in events
    messages = {(i["name"], i["channel"], i["journey"], i["step"], i["detail"]["status"])
                for i in timeline if i["kind"] == "message"}  # fmt: skip
    assert messages == {("cart_reminder", "email", "cart_followup", "remind", "sent"),
                        ("order_thanks", "sms", "order_review", "ask", "sent")}  # fmt: skip
    decisions = [(i["journey"], i["step"], i["name"], i["detail"]["reason"])
                 for i in timeline if i["kind"] == "journey"]  # fmt: skip
    assert ("order_review", "chat", "skipped", "no_consent") in decisions
    assert ("order_review", "ask", "deferred", "quiet_hours") in decisions
    assert ("order_review", "ask", "sent", "sms") in decisions
    channels = {(i["step"], i["name"]): i["channel"] for i in timeline if i["kind"] == "journey"}
    assert channels[("chat", "skipped")] == "whatsapp"  # the one channel the step tried
    assert channels[("ask", "deferred")] == "sms"
    assert ("cart_followup", "remind", "sent", "email") in decisions
    [exit_item] = [i for i in timeline if i["kind"] == "journey" and i["name"] == "exited"
                   and i["journey"] == "order_review"]  # fmt: skip
    assert exit_item["detail"]["reason"] == "exit_when:message.replied"
    assert exit_item["detail"]["event_id"] == "message.replied:sms:in-1"
    [reply] = [i for i in timeline if i["name"] == "message.replied"]
    assert reply["channel"] == "sms"
    assert reply["detail"]["properties"]["in_reply_to"] == sent["order_review/ask"].id
    assert reply["detail"]["properties"]["matched_by"] == "provider_message_id"
    assert reply["detail"]["properties"]["text"] == "Got it, thank you!"
    # the story in order: browsing, CRM visit, email, phone, order, SMS, reply
    oldest_first = [(i["kind"], i["name"], i["channel"]) for i in reversed(timeline)]
    order = [("event", "store.visited", None), ("event", "product.viewed", None),
             ("consent", "granted", "email"), ("message", "cart_reminder", "email"),
             ("consent", "granted", "sms"), ("event", "order.completed", None),
             ("message", "order_thanks", "sms"), ("event", "message.replied", "sms")]  # fmt: skip
    positions = [oldest_first.index(step) for step in order]
    assert positions == sorted(positions), oldest_first

    # --- customers show, as text
    text = cli("customers", "show", "anon-9", "--limit", "200").stdout
    for expected in ("ana", "ana@example.com", PHONE, "Europe/Berlin", "crm-77", "timeline",
                     "identities", "consent", "product.viewed", "store.visited",
                     "cart_reminder", "order_thanks", "message.replied", "no_consent",
                     "quiet_hours", "exit_when:message.replied"):  # fmt: skip
        assert expected in text, expected
    assert "quiet_hours until 2026-05-05T06:00:00+00:00" in text  # when the deferral ends
    assert "more: --offset" not in text

    # --- explain: the guard behind the skip and the deferral, the reply behind the exit
    explained = json.loads(cli("explain", "0151 12345678", "--journey", "order_review",
                               "--json").stdout)  # fmt: skip
    assert (explained["customer_id"], explained["journey"]) == ("ana", "order_review")
    steps = explained["decisions"]
    outcomes = [(d["step"], d["outcome"], d["reason"]) for d in steps]
    assert outcomes == [
        (None, "entered", None),
        ("chat", "skipped", "no_consent"),  # no WhatsApp consent
        ("ask", "deferred", "quiet_hours"),
        ("ask", "sent", "sms"),
        ("pause", "waiting", "delay for 2d"),
        (None, "exited", "exit_when:message.replied"),
    ]
    assert steps[0]["event_id"] == "order-1"  # the trigger
    by_outcome = {(d["step"], d["outcome"]): d for d in steps}
    skipped = by_outcome[("chat", "skipped")]
    assert skipped["reason"] == "no_consent"
    assert skipped["inputs"]["eligibility"] == {"whatsapp": "no_consent"}
    deferred = by_outcome[("ask", "deferred")]
    assert deferred["reason"] == "quiet_hours"
    assert datetime.fromisoformat(deferred["inputs"]["until"]) == MORNING
    assert deferred["inputs"]["local_time"] == "23:01"
    assert deferred["inputs"]["quiet_hours"] == "21:00-08:00"
    [exited] = [d for d in steps if d["outcome"] == "exited"]
    assert exited["reason"] == "exit_when:message.replied"
    assert exited["event_id"] == "message.replied:sms:in-1"  # the reply that ended it
    assert datetime.fromisoformat(exited["at"]) == REPLIED
    assert [d["at"] for d in steps] == sorted(d["at"] for d in steps)

    cart = json.loads(cli("explain", "crm-77", "--journey", "cart_followup", "--json").stdout)
    assert cart["customer_id"] == "ana"
    cart_outcomes = [(d["step"], d["outcome"], d["reason"]) for d in cart["decisions"]]
    assert cart_outcomes[:2] == [(None, "entered", None), ("remind", "sent", "email")]
    [converted] = [d for d in cart["decisions"] if d["outcome"] == "converted"]
    assert converted["event_id"] == "order-1"

    text = cli("explain", "ana", "--journey", "order_review").stdout
    for expected in ("no_consent", "quiet_hours", "2026-05-05T06:00:00+00:00", "deferred",
                     "exit_when:message.replied"):  # fmt: skip
        assert expected in text, expected


def test_explain_as_text_names_the_reply_that_ended_the_journey(told: Story) -> None:
    text = cli("explain", "ana", "--journey", "order_review").stdout
    [exit_row] = [line for line in text.splitlines() if "exit_when:message.replied" in line]
    assert "message.replied:sms:in-1" in exit_row


def test_at_one_instant_what_an_event_caused_is_shown_above_it(told: Story) -> None:
    shown = json.loads(cli("customers", "show", "ana", "--json", "--limit", "200").stdout)
    timeline = shown["timeline"]
    place = {i["detail"]["event_id"]: n for n, i in enumerate(timeline) if i["kind"] == "event"}
    caused = [(n, i) for n, i in enumerate(timeline)
              if i["kind"] == "journey" and i["detail"].get("event_id") in place]  # fmt: skip
    assert {i["name"] for _n, i in caused} >= {"entered", "exited"}
    for n, item in caused:
        cause = place[item["detail"]["event_id"]]
        if timeline[cause]["at"] == item["at"]:
            assert n < cause, (item["name"], item["journey"], timeline[cause]["name"])
