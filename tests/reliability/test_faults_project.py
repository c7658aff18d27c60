"""Faults in what the product reads besides its store: a journey edited while customers
are in it (through the real ``omni-journey run`` and ``dispatch``), and a corrupt channel
model file (the learned policy deciding a runner pass on a real store).

A journey edit must never lose a customer nor a message: customers either finish on the
version they entered (``on_change: keep``), move as ``versioning.migrate`` says, or, when
the edit would strand them, the journey is not run (a clear error, exit 1) while every
other journey runs, and the pass after the fix finishes the work. A corrupt model is
never fatal: the rule decides, each decision records why, one error names the file and
what to do, and a good model takes over once trained.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from omni_journey.channels.artefacts import register_model, save_model
from omni_journey.channels.learned import LearnedPolicy
from omni_journey.delivery import dispatch
from omni_journey.delivery.file import FileProvider
from omni_journey.ingest.intake import ingest_events, ingest_profiles
from omni_journey.runner.passes import JourneyRunner
from omni_journey.settings import Settings
from omni_journey.spec.models import JourneySpec
from omni_journey.store import open_store
from omni_journey.store.tables import Message
from tests.reliability.faults import Project, clean_stop, delivered_files, settle
from tests.support.outbox import simple_renderer
from tests.unit.channels.support import constant_model

THREE_STEPS = """\
key: onboard
trigger:
  event: account.created
entry:
  re_entry: never
versioning:
  on_change: {on_change}
steps:
  - id: hello
    type: send
    message: welcome
    channel: email
  - id: {wait}
    type: delay
    for: 1d
  - id: tips
    type: send
    message: {tips}
    channel: email
"""
OTHER = """\
key: thanks
trigger:
  event: order.completed
steps:
  - id: thank
    type: send
    message: welcome
    channel: email
"""


def _onboard(on_change: str, wait: str = "wait", tips: str = "welcome_tips") -> str:
    return THREE_STEPS.format(on_change=on_change, wait=wait, tips=tips)


def _sent_by_step(engine: Engine) -> dict[tuple[str, str], int]:
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT journey_key, step_id, count(*) FROM messages WHERE status = 'sent' "
            "GROUP BY journey_key, step_id"
        ))  # fmt: skip
        return {(journey, step): int(n) for journey, step, n in rows}


def test_an_edit_that_would_strand_customers_stops_that_journey_only_until_fixed(
    tmp_path: Path,
) -> None:
    project = Project.create(tmp_path, {"onboard": _onboard("migrate"), "thanks": OTHER})
    customers = project.customers(10)
    project.events("account.created", customers, "2026-05-04T10:00:00Z")
    project.ok("run", "--now", "2026-05-04T10:05:00Z")  # hello sent, all wait at "wait"
    project.journey("onboard", _onboard("migrate", wait="pause"))  # the step renamed
    project.events("order.completed", customers[:4], "2026-05-04T11:00:00Z")

    done = project.command("run", "--now", "2026-05-04T12:00:00Z")
    error = clean_stop(done, 1, "removed-step-in-use", '"wait"', "versioning.migrate")
    assert "journeys/onboard.yaml" in error and "not run" in error
    engine = open_store(project.database_url)
    assert _sent_by_step(engine) == {("onboard", "hello"): 10, ("thanks", "thank"): 4}

    project.journey("onboard", _onboard("migrate", wait="pause").replace(
        "  on_change: migrate\n", "  on_change: migrate\n  migrate: {wait: pause}\n"))  # fmt: skip
    project.ok("run", "--now", "2026-05-05T12:00:00Z")  # moved to "pause" (1d from now)
    project.ok("run", "--now", "2026-05-06T12:30:00Z")
    assert _sent_by_step(engine) == {
        ("onboard", "hello"): 10,
        ("onboard", "tips"): 10,
        ("thanks", "thank"): 4,
    }
    figures = settle(engine, delivered_files(project, engine))
    assert figures.sent == 24
    engine.dispose()
    print(f"\nfaults journey edit (migrate): {figures}")


def test_customers_in_flight_finish_on_their_version_when_the_journey_changes(
    tmp_path: Path,
) -> None:
    project = Project.create(tmp_path, {"onboard": _onboard("keep")})
    first = project.customers(6, "early")
    project.events("account.created", first, "2026-05-04T10:00:00Z")
    project.ok("run", "--now", "2026-05-04T10:05:00Z")
    # the waiting step renamed and the next message changed while six customers wait
    project.journey("onboard", _onboard("keep", wait="pause", tips="welcome_offer"))
    later = project.customers(4, "late")
    project.events("account.created", later, "2026-05-04T11:00:00Z")
    project.ok("run", "--now", "2026-05-04T11:05:00Z")
    project.ok("run", "--now", "2026-05-05T12:00:00Z")

    engine = open_store(project.database_url)
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT m.customer_id, m.message_key, v.version FROM messages m "
            "JOIN enrollments e ON e.id = m.enrollment_id "
            "JOIN journey_versions v ON v.id = e.journey_version_id WHERE m.step_id = 'tips'"
        )).all()  # fmt: skip
    assert sorted((c[:5], key, version) for c, key, version in rows) == sorted(
        [("early", "welcome_tips", 1)] * 6 + [("late-", "welcome_offer", 2)] * 4
    )
    figures = settle(engine, delivered_files(project, engine))
    assert figures.sent == 20
    engine.dispose()
    print(f"\nfaults journey edit (keep): {figures}")


T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
BEST = JourneySpec.model_validate({
    "key": "cart", "trigger": {"event": "product.added"},
    "steps": [{"id": "nudge", "type": "send", "message": "cart_reminder", "channel": "best"}],
})  # fmt: skip


def _corrupt(folder: Path, how: str) -> Path:
    weights, card = folder / "weights.npz", folder / "card.json"
    if how == "truncated weights":
        weights.write_bytes(weights.read_bytes()[:100])
        return weights
    if how == "garbage card":
        card.write_text('{"spec": "\x00 not a card')
        return card
    weights.unlink()
    return weights


@pytest.mark.parametrize("how", ["truncated weights", "garbage card", "missing weights"])
def test_a_corrupt_model_file_falls_back_to_the_rule_and_names_the_file(
    how: str, store: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(home=tmp_path, rate_limits="", channel_cold_epsilon=0.0)
    everyone = {"email": True, "sms": True, "push": True, "whatsapp": True}
    profiles = [
        {"customer_id": f"c-{n}", "email": f"c{n}@example.com", "phone": f"+49151123456{n:02d}",
         "push_tokens": [f"tok-{n}"], "consent": everyone}
        for n in range(8)
    ]  # fmt: skip
    assert ingest_profiles(store, profiles, now=T0, settings=settings).rejected == []

    def added(customers: range, at: datetime) -> None:
        events = [
            {"id": f"add-{n}", "name": "product.added", "customer_id": f"c-{n}",
             "at": at.isoformat(), "properties": {"sku": "X"}}
            for n in customers
        ]  # fmt: skip
        ingest_events(store, events, now=at, settings=settings)

    def activate(version: str) -> Path:
        model = constant_model({"email": 0.004, "sms": 0.012, "push": 0.006}, version=version)
        path, digest = save_model(model, settings.home / "models")
        with store.begin() as connection:
            register_model(connection, model, path, digest)
        return settings.home / "models" / path

    broken = _corrupt(activate("cm-broken"), how)
    runner = JourneyRunner(store, {"cart": BEST}, {}, policy=LearnedPolicy.from_settings(settings))
    added(range(4), T0)
    with caplog.at_level(logging.ERROR, logger="omni_journey.channels"):
        report = runner.run(T0 + timedelta(minutes=1))  # the pass goes on
    assert report.total("queued") == 4
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors  # once, not once per decision
    assert str(broken) in errors[0] and "cm-broken" in errors[0]
    assert "omni-journey train" in errors[0]

    activate("cm-good")  # trained again: the next decisions are the model's
    added(range(4, 8), T0 + timedelta(hours=1))
    runner.run(T0 + timedelta(hours=1, minutes=1))
    with store.connect() as connection:
        table = Message.__table__  # type: ignore[attr-defined]
        found = connection.execute(select(table.c.customer_id, table.c.decision)).all()
    decisions = {customer: decision for customer, decision in found}
    for n in range(4):
        decision = decisions[f"c-{n}"]
        assert decision["model_version"] is None and "(model unavailable)" in decision["reason"]
        assert str(broken) in decision["extra"]["model_error"]
    assert {decisions[f"c-{n}"]["model_version"] for n in range(4, 8)} == {"cm-good"}

    provider = FileProvider(tmp_path / "outbox", sender="shop@example.com")
    providers = dict.fromkeys(("email", "sms", "push", "whatsapp"), provider)
    dispatch(store, providers, simple_renderer, now=T0 + timedelta(hours=2), settings=settings,
             worker_id="w1", clock=lambda: 0.0, sleep=lambda _s: None)  # fmt: skip
    files = {p.name for p in (tmp_path / "outbox").rglob("*") if p.is_file()}
    figures = settle(store, {k: 1 for k in _keys(store) if any(_stem(k) in f for f in files)})
    assert figures.sent == 8
    print(f"\nfaults corrupt model ({how}): {figures}")


def _keys(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT idempotency_key FROM messages")).scalars())


def _stem(key: str) -> str:
    from omni_journey.delivery.file import outbox_file_name

    return outbox_file_name(key, "")
