"""The dispatcher on a real store (SQLite file and PostgreSQL): exactly once, retries,
suppression, consent, crash recovery, the file outbox."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from omni_journey.delivery import (
    AddressRejectedError,
    ProviderPausedError,
    dispatch,
)
from omni_journey.delivery.file import FileProvider
from omni_journey.delivery.outbox import claim, mark_in_flight
from omni_journey.delivery.ratelimit import TokenBucket
from omni_journey.delivery.sms import SnsSmsProvider
from omni_journey.errors import TransientDeliveryError
from omni_journey.links import LinkClaims, LinkSigner
from omni_journey.render import RenderContext, TemplateRenderer, customer_profile
from omni_journey.settings import Settings
from omni_journey.store.tables import Event, Identity, Suppression
from tests.support.outbox import (
    T0,
    RecordingProvider,
    add_customer,
    add_message,
    messages,
    simple_renderer,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _dispatch(*args: Any, **kwargs: Any) -> Any:
    """dispatch() with time frozen (no real clock, no sleeping) unless a test brings its own."""
    frozen = FakeClock()
    kwargs.setdefault("clock", frozen)
    kwargs.setdefault("sleep", frozen.sleep)
    return dispatch(*args, **kwargs)


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "home": tmp_path / "home",
        "unsubscribe_url": "https://shop.example.com/unsubscribe",
        "rate_limits": "",
        "send_concurrency": 1,
        **overrides,
    }
    return Settings(**values)


def _events(engine: Engine, name: str | None = None) -> list[Any]:
    query = select(Event.__table__)  # type: ignore[attr-defined]
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [r for r in rows if name is None or r.name == name]


def _all(provider: Any) -> dict[str, Any]:
    return {c: provider for c in ("email", "sms", "push", "whatsapp", "webhook")}


def test_file_outbox_writes_files_a_person_can_open(store: Engine, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    add_customer(store, "c-1", email="ana@example.com", phone="+4915112345678",
                 push_tokens=["tok-1"], attributes={"first_name": "Ana"})  # fmt: skip
    add_message(store, "welcome:1:email", "c-1", "email")
    add_message(store, "welcome:1:sms", "c-1", "sms")
    add_message(store, "welcome:1:push", "c-1", "push")
    hook = {"url": "https://hooks.example.com/x", "body": {"a": 1}, "headers": {}}
    add_message(store, "welcome:1:hook", "c-1", "webhook", decision=hook)
    provider = FileProvider(settings.outbox_dir, sender=settings.email_from)

    report = _dispatch(store, _all(provider), simple_renderer, now=T0, settings=settings,
                      worker_id="w1")  # fmt: skip

    assert (report.claimed, report.sent, report.failed) == (4, 4, 0)
    rows = messages(store)
    assert {r.status for r in rows.values()} == {"sent"}
    assert all(r.provider == "file" and r.attempts == 1 for r in rows.values())
    emls = list((settings.outbox_dir / "email").glob("*.eml"))
    assert len(emls) == 1
    parsed = BytesParser(policy=policy.default).parsebytes(emls[0].read_bytes())
    assert parsed["Subject"] == "Hello Ana"
    assert parsed["To"] == "ana@example.com"
    # the renderer gave no link: the dispatcher signs one, in the one link format
    link = parsed["List-Unsubscribe"]
    assert link.startswith(f"<{settings.link_base_url}/u/") and link.endswith(">")
    claims = LinkSigner.from_settings(settings).verify(link[1:-1])
    assert claims == LinkClaims("unsubscribe", "c-1", "email", "welcome")
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed.get_body(("plain",)).get_content().strip() == "Hello Ana"
    assert "<b>Ana</b>" in parsed.get_body(("html",)).get_content()
    sms = json.loads(next((settings.outbox_dir / "sms").glob("*.json")).read_text())
    assert sms["to"] == "+4915112345678" and sms["text"] == "Hello Ana"
    push = json.loads(next((settings.outbox_dir / "push").glob("*.json")).read_text())
    assert push["to"] == "tok-1" and push["title"] == "Hello"
    hook = json.loads(next((settings.outbox_dir / "webhook").glob("*.json")).read_text())
    assert hook["body"] == {"a": 1}
    sent = _events(store, "message.sent")
    assert sorted(e.event_id for e in sent) == sorted(f"message.sent:{r.id}" for r in rows.values())
    assert {e.properties["provider"] for e in sent} == {"file"}
    # a second pass finds nothing to do
    again = _dispatch(store, _all(provider), simple_renderer, now=T0 + timedelta(hours=1),
                     settings=settings, worker_id="w1")  # fmt: skip
    assert again.claimed == 0


def test_two_dispatchers_at_once_send_each_message_once(store: Engine, tmp_path: Path) -> None:
    settings = _settings(tmp_path, dispatch_batch_size=7)
    for i in range(60):
        add_customer(store, f"c-{i}", email=f"c{i}@example.com")
        add_message(store, f"k-{i}", f"c-{i}", "email")
    provider = RecordingProvider(max_batch=3)
    reports = []
    start = threading.Barrier(2)

    def worker(name: str) -> None:
        start.wait()
        reports.append(_dispatch(store, _all(provider), simple_renderer, now=T0,
                                settings=settings, worker_id=name))  # fmt: skip

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    counts = Counter(m.idempotency_key for m in provider.sent)
    assert len(counts) == 60 and set(counts.values()) == {1}
    assert sum(r.sent for r in reports) == 60
    assert {r.status for r in messages(store).values()} == {"sent"}
    assert len(_events(store, "message.sent")) == 60


def test_crash_after_claiming_is_reclaimed_after_expiry_and_sent_once(
    store: Engine, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, dispatch_claim_seconds=300)
    add_customer(store, "c-1", email="ana@example.com")
    add_message(store, "k-1", "c-1", "email")
    crashed = claim(store, worker_id="crashed", now=T0, until=T0 + timedelta(minutes=5), limit=10)
    assert len(crashed) == 1  # ... and then the worker died before sending
    provider = RecordingProvider()

    early = _dispatch(store, _all(provider), simple_renderer, now=T0 + timedelta(minutes=1),
                     settings=settings, worker_id="w2")  # fmt: skip
    assert early.claimed == 0 and provider.sent == []

    late = _dispatch(store, _all(provider), simple_renderer, now=T0 + timedelta(minutes=6),
                    settings=settings, worker_id="w2")  # fmt: skip
    assert (late.claimed, late.sent, late.in_doubt) == (1, 1, 0)
    assert [m.idempotency_key for m in provider.sent] == ["k-1"]
    row = messages(store)["k-1"]
    assert (row.status, row.attempts, row.claimed_by, row.in_flight_since) == (
        "sent",
        1,
        None,
        None,
    )


def test_crash_during_the_provider_call_is_not_sent_twice(store: Engine, tmp_path: Path) -> None:
    settings = _settings(tmp_path, dispatch_in_doubt="fail")
    add_customer(store, "c-1", email="ana@example.com")
    message_id = add_message(store, "k-1", "c-1", "email")
    claim(store, worker_id="crashed", now=T0, until=T0 + timedelta(minutes=5), limit=10)
    mark_in_flight(store, [message_id], worker_id="crashed", at=T0)  # then died mid-call
    provider = RecordingProvider()

    report = _dispatch(store, _all(provider), simple_renderer, now=T0 + timedelta(minutes=6),
                      settings=settings, worker_id="w2")  # fmt: skip

    assert provider.sent == []
    assert (report.in_doubt, report.failed) == (1, 1)
    row = messages(store)["k-1"]
    assert row.status == "failed" and row.error.startswith("memory: in_doubt")
    [failed] = _events(store, "message.failed")
    assert failed.properties["reason"] == "in_doubt"


def test_an_idempotent_provider_resends_a_message_in_doubt(store: Engine, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    add_customer(store, "c-1", email="ana@example.com")
    message_id = add_message(store, "k-1", "c-1", "email")
    claim(store, worker_id="crashed", now=T0, until=T0 + timedelta(minutes=5), limit=10)
    mark_in_flight(store, [message_id], worker_id="crashed", at=T0)
    provider = FileProvider(settings.outbox_dir, sender=settings.email_from)

    report = _dispatch(store, _all(provider), simple_renderer, now=T0 + timedelta(minutes=6),
                      settings=settings, worker_id="w2")  # fmt: skip

    assert (report.in_doubt, report.sent) == (1, 1)
    assert len(list((settings.outbox_dir / "email").iterdir())) == 1
    assert messages(store)["k-1"].attempts == 2  # the crashed call counted too


def test_transient_failure_is_retried_later_then_failed(store: Engine, tmp_path: Path) -> None:
    settings = _settings(tmp_path, dispatch_max_attempts=3, dispatch_backoff_seconds=60)
    add_customer(store, "c-1", email="ana@example.com")
    add_message(store, "k-1", "c-1", "email")
    provider = RecordingProvider(
        errors={"ana@example.com": TransientDeliveryError("memory", "Throttling")}
    )

    def run(at: timedelta) -> Any:
        return _dispatch(store, _all(provider), simple_renderer, now=T0 + at,
                        settings=settings, worker_id="w1")  # fmt: skip

    assert run(timedelta(0)).retried == 1
    row = messages(store)["k-1"]
    assert (row.status, row.attempts, row.send_after) == ("pending", 1, T0 + timedelta(seconds=60))
    assert run(timedelta(seconds=30)).claimed == 0  # not due yet
    assert run(timedelta(seconds=60)).retried == 1
    row = messages(store)["k-1"]
    assert (row.attempts, row.send_after) == (2, T0 + timedelta(seconds=60 + 120))
    last = run(timedelta(seconds=180))
    assert last.failed == 1
    row = messages(store)["k-1"]
    assert (row.status, row.attempts) == ("failed", 3)
    [failed] = _events(store, "message.failed")
    assert failed.properties["reason"] == "Throttling" and failed.properties["exhausted"]
    assert provider.calls == 3


def test_permanent_address_error_fails_suppresses_and_prunes_the_token(
    store: Engine, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    add_customer(store, "c-1", push_tokens=["dead-token"])
    add_customer(store, "c-2", push_tokens=["good-token"])
    add_message(store, "k-1", "c-1", "push")
    add_message(store, "k-2", "c-2", "push")
    provider = RecordingProvider(errors={"dead-token": AddressRejectedError("fcm", "UNREGISTERED")})

    report = _dispatch(store, _all(provider), simple_renderer, now=T0, settings=settings,
                      worker_id="w1")  # fmt: skip

    assert (report.sent, report.failed) == (1, 1)
    rows = messages(store)
    assert (rows["k-1"].status, rows["k-2"].status) == ("failed", "sent")
    with store.connect() as connection:
        tokens = connection.execute(select(Identity.value)).scalars().all()  # type: ignore[call-overload]
        suppressed = connection.execute(select(Suppression.__table__)).all()  # type: ignore[attr-defined]
    assert tokens == ["good-token"]
    assert [(s.channel, s.address, s.reason) for s in suppressed] == [
        ("push", "dead-token", "UNREGISTERED")
    ]
    # a later message to the pruned customer is unreachable, never sent
    add_message(store, "k-3", "c-1", "push")
    later = _dispatch(store, _all(provider), simple_renderer, now=T0, settings=settings,
                     worker_id="w1")  # fmt: skip
    assert later.failed == 1 and messages(store)["k-3"].error.endswith("unreachable: push")


def test_a_bad_phone_number_fails_that_message_only(store: Engine, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    published: list[str] = []

    class Client:
        def publish(self, **request: Any) -> dict[str, str]:
            published.append(request["PhoneNumber"])
            return {"MessageId": f"sns-{len(published)}"}

    add_customer(store, "c-bad", phone="0151 not a number")
    add_customer(store, "c-good", phone="+4915112345678")
    add_message(store, "k-bad", "c-bad", "sms")
    add_message(store, "k-good", "c-good", "sms")
    providers = {"sms": SnsSmsProvider(Client())}

    report = _dispatch(store, providers, simple_renderer, now=T0, settings=settings,
                      worker_id="w1")  # fmt: skip

    assert (report.sent, report.failed) == (1, 1)
    assert published == ["+4915112345678"]
    rows = messages(store)
    assert rows["k-bad"].status == "failed"
    assert rows["k-bad"].error.startswith("sns: invalid_phone_number")
    assert "0151" not in rows["k-bad"].error  # never a number in an error
    assert rows["k-good"].provider_message_id == "sns-1"


def test_no_consent_or_suppressed_address_is_never_sent(store: Engine, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    add_customer(store, "c-none", email="none@example.com", consent=())
    add_customer(store, "c-supp", email="supp@example.com")
    add_customer(store, "c-ok", email="ok@example.com")
    with store.begin() as connection:
        connection.execute(
            Suppression.__table__.insert(),  # type: ignore[attr-defined]
            [{"channel": "email", "address": "supp@example.com", "reason": "hard_bounce",
              "created_at": T0}],
        )  # fmt: skip
    for cid in ("c-none", "c-supp", "c-ok"):
        add_message(store, f"k-{cid}", cid, "email")
    provider = RecordingProvider()

    report = _dispatch(store, _all(provider), simple_renderer, now=T0, settings=settings,
                      worker_id="w1")  # fmt: skip

    assert [m.to for m in provider.sent] == ["ok@example.com"]
    assert (report.sent, report.suppressed) == (1, 2)
    rows = messages(store)
    assert (rows["k-c-none"].status, rows["k-c-none"].error) == ("suppressed", "no_consent")
    assert (rows["k-c-supp"].status, rows["k-c-supp"].error) == ("suppressed", "suppressed")


def test_a_paused_provider_puts_the_rest_back_without_counting_attempts(
    store: Engine, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    for i in range(5):
        add_customer(store, f"c-{i}", email=f"c{i}@example.com")
        add_message(store, f"k-{i}", f"c-{i}", "email")
    provider = RecordingProvider(
        max_batch=2,
        errors={
            f"c{i}@example.com": ProviderPausedError(
                "ses",
                "LimitExceededException",
                "Daily message quota exceeded",
                retry_after=timedelta(hours=1),
            )
            for i in range(5)
        },
    )

    report = _dispatch(store, _all(provider), simple_renderer, now=T0, settings=settings,
                      worker_id="w1")  # fmt: skip

    assert provider.calls == 1  # paused after the first batch, not a loop
    assert report.deferred == 5 and report.paused == {"memory": "LimitExceededException"}
    rows = messages(store).values()
    assert {(r.status, r.attempts) for r in rows} == {("pending", 0)}
    assert {r.send_after for r in rows} == {T0 + timedelta(hours=1)}


def test_rate_limit_paces_batches_with_the_injected_clock(store: Engine, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    for i in range(30):
        add_customer(store, f"c-{i}", email=f"c{i}@example.com")
        add_message(store, f"k-{i}", f"c-{i}", "email")
    clock = FakeClock()
    provider = RecordingProvider(max_batch=10)
    bucket = TokenBucket(10, clock=clock, sleep=clock.sleep)

    report = _dispatch(store, _all(provider), simple_renderer, now=T0, settings=settings,
                      worker_id="w1", clock=clock, sleep=clock.sleep,
                      rate_limiters={"memory": bucket})  # fmt: skip

    assert report.sent == 30
    assert clock.slept == [1.0, 1.0]  # 10 in the burst, then 10 a second


def test_an_unexpected_renderer_exception_retries_that_message_only(
    store: Engine, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    add_customer(store, "c-1", email="a@example.com")
    add_customer(store, "c-2", email="b@example.com", attributes={"broken": True})
    add_message(store, "k-1", "c-1", "email")
    add_message(store, "k-2", "c-2", "email")
    provider = RecordingProvider()

    def renderer(message: Any, customer: Any) -> Any:
        if customer.attributes.get("broken"):
            raise KeyError("first_name")
        return simple_renderer(message, customer)

    report = _dispatch(store, _all(provider), renderer, now=T0, settings=settings,
                      worker_id="w1")  # fmt: skip

    assert (report.sent, report.retried) == (1, 1)
    row = messages(store)["k-2"]
    assert (row.status, row.attempts, row.error) == ("pending", 1, "render: render_error: KeyError")


def test_a_render_error_fails_that_message_once_with_its_code(
    store: Engine, tmp_path: Path
) -> None:
    """A template that cannot render for a customer renders the same next time: the
    message fails at once with the render code, no retry loop."""
    settings = _settings(tmp_path, dispatch_max_attempts=6)
    templates = tmp_path / "templates"
    (templates / "welcome").mkdir(parents=True)
    (templates / "welcome" / "message.yaml").write_text(
        'subject: "Hi {{ customer.first_name }}"\nheadline: Hello\nbody: Welcome.\n'
    )
    add_customer(store, "c-1", email="a@example.com", attributes={"first_name": "Ana"})
    add_customer(store, "c-2", email="b@example.com")  # no first_name
    add_message(store, "k-1", "c-1", "email")
    add_message(store, "k-2", "c-2", "email")
    provider = RecordingProvider()
    real = TemplateRenderer.from_settings(templates, settings)

    def renderer(message: Any, customer: Any) -> Any:
        profile = customer_profile(customer.id, customer.attributes)
        return real.render(message.message_key, message.channel, RenderContext(profile))

    report = _dispatch(store, _all(provider), renderer, now=T0, settings=settings,
                      worker_id="w1")  # fmt: skip

    assert (report.sent, report.failed, report.retried) == (1, 1, 0)
    assert report.errors == {"render:undefined-variable": 1}
    row = messages(store)["k-2"]
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.error.startswith("render: undefined-variable: ")
    [failed] = _events(store, "message.failed")
    assert (failed.properties["transient"], failed.properties["reason"]) == (
        False,
        "undefined-variable",
    )
    # the message that rendered carries the renderer's own signed unsubscribe link
    [sent] = provider.sent
    assert (
        sent.unsubscribe_url
        == real.render(
            "welcome", "email", RenderContext(customer_profile("c-1", {"first_name": "Ana"}))
        ).unsubscribe_url
    )  # type: ignore[union-attr]
    # nothing is left to retry
    later = _dispatch(store, _all(provider), renderer, now=T0 + timedelta(days=1),
                      settings=settings, worker_id="w1")  # fmt: skip
    assert later.claimed == 0


@pytest.mark.parametrize("flag", [True, False])
def test_a_renderer_error_may_say_whether_it_is_permanent(
    sqlite_store: Engine, tmp_path: Path, flag: bool
) -> None:
    class TemplateGone(Exception):
        code = "template-missing"
        permanent = flag

    add_customer(sqlite_store, "c-1", email="a@example.com")
    add_message(sqlite_store, "k-1", "c-1", "email")

    def renderer(message: Any, customer: Any) -> Any:
        raise TemplateGone()

    report = _dispatch(sqlite_store, _all(RecordingProvider()), renderer, now=T0,
                      settings=_settings(tmp_path), worker_id="w1")  # fmt: skip

    row = messages(sqlite_store)["k-1"]
    if flag:
        assert (row.status, row.error) == ("failed", "render: template-missing")
        assert report.failed == 1
    else:
        assert (row.status, row.error) == ("pending", "render: render_error: TemplateGone")
        assert report.retried == 1


def test_whatsapp_window_comes_from_the_last_inbound_message(store: Engine, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    add_customer(store, "c-in", phone="+4915112345678")
    add_customer(store, "c-out", phone="+4915112345679")
    with store.begin() as connection:
        connection.execute(
            Event.__table__.insert(),  # type: ignore[attr-defined]
            [{"event_id": "wa-1", "name": "whatsapp.received", "customer_id": "c-in",
              "at": T0 - timedelta(hours=2), "received_at": T0, "properties": {}},
             {"event_id": "wa-2", "name": "whatsapp.received", "customer_id": "c-out",
              "at": T0 - timedelta(hours=30), "received_at": T0, "properties": {}}],
        )  # fmt: skip
    add_message(store, "k-in", "c-in", "whatsapp")
    add_message(store, "k-out", "c-out", "whatsapp")
    provider = FileProvider(settings.outbox_dir, sender=settings.email_from)

    _dispatch(store, _all(provider), simple_renderer, now=T0, settings=settings, worker_id="w1")

    sent = {
        doc["idempotency_key"]: doc
        for doc in (json.loads(p.read_text()) for p in (settings.outbox_dir / "whatsapp").iterdir())
    }
    assert sent["k-in"]["type"] == "text" and sent["k-in"]["body"] == "Hello there"
    assert sent["k-out"]["type"] == "template" and sent["k-out"]["template"] == "hello_v1"


@pytest.mark.parametrize("limit", [1, 3])
def test_limit_caps_the_messages_claimed(sqlite_store: Engine, tmp_path: Path, limit: int) -> None:
    settings = _settings(tmp_path)
    for i in range(5):
        add_customer(sqlite_store, f"c-{i}", email=f"c{i}@example.com")
        add_message(sqlite_store, f"k-{i}", f"c-{i}", "email")
    provider = RecordingProvider()
    report = _dispatch(sqlite_store, _all(provider), simple_renderer, now=T0, settings=settings,
                      worker_id="w1", limit=limit)  # fmt: skip
    assert report.claimed == report.sent == limit


def test_outcomes_of_a_lost_claim_are_not_written_the_others_are(store: Engine) -> None:
    """A worker whose claim expired and was taken over writes nothing for that row (the
    new owner decides it); every other outcome of its batch is written, in one go."""
    from omni_journey.delivery.outbox import Finish, finish

    add_customer(store, "c-1", email="ana@example.com")
    for key in ("k-1", "k-2", "k-3"):
        add_message(store, key, "c-1", "email")
    rows = claim(store, worker_id="slow", now=T0, until=T0 + timedelta(minutes=5), limit=10)
    taken = claim(store, worker_id="fast", now=T0 + timedelta(minutes=6),
                  until=T0 + timedelta(minutes=11), limit=1)  # fmt: skip
    assert [r.idempotency_key for r in taken] == ["k-1"]
    at = T0 + timedelta(minutes=7)
    outcomes = [
        Finish(rows[0], "sent", at, "c-1", provider="file", provider_message_id="p-1",
               event="message.sent"),
        Finish(rows[1], "sent", at, "c-1", provider="file", provider_message_id="p-2",
               event="message.sent"),
        Finish(rows[2], "pending", at, "c-1", error="throttled", send_after=at,
               attempts_delta=1),
    ]  # fmt: skip
    lost = finish(store, outcomes, worker_id="slow")
    assert [item.row.idempotency_key for item in lost] == ["k-1"]
    after = messages(store)
    assert (after["k-1"].status, after["k-1"].claimed_by) == ("claimed", "fast")
    assert (after["k-2"].status, after["k-2"].provider_message_id, after["k-2"].sent_at) == (
        "sent", "p-2", at,
    )  # fmt: skip
    assert (after["k-3"].status, after["k-3"].attempts, after["k-3"].error) == (
        "pending", rows[2].attempts + 1, "throttled",
    )  # fmt: skip
    assert after["k-3"].claimed_by is None
    assert [e.properties["provider_message_id"] for e in _events(store, "message.sent")] == ["p-2"]
