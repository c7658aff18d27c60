"""The learned policy against a real store: the runner's sends, cold start, one channel,
no consent, and a model that is absent, active, corrupt or mismatched."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, update

from omni_journey.channels.artefacts import CHANNEL_MODELS, register_model, save_model
from omni_journey.channels.learned import LearnedPolicy
from omni_journey.engine.types import SendMessage
from omni_journey.ingest.intake import ingest_events, ingest_profiles
from omni_journey.runner.passes import JourneyRunner
from omni_journey.settings import Settings
from omni_journey.spec.models import JourneySpec, QuietHours
from omni_journey.store.core import JOURNEY_LOG, MESSAGES
from tests.unit.channels.support import constant_model

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)  # 12:00 in Berlin
COSTS = {"email": 0.001, "sms": 0.07, "push": 0.0, "whatsapp": 0.06}
ALL = {"email": True, "sms": True, "push": True, "whatsapp": True}
NONE = dict.fromkeys(ALL, False)


def _profiles(engine: Engine, settings: Settings) -> None:
    rows = [
        {"customer_id": "cold", "email": "cold@example.com", "phone": "+4915112345678",
         "push_tokens": ["fcm-cold"], "timezone": "Europe/Berlin", "consent": ALL},
        {"customer_id": "only-email", "email": "one@example.com", "phone": "+4915112345679",
         "timezone": "Europe/Berlin", "consent": {**NONE, "email": True}},
        {"customer_id": "nobody", "email": "no@example.com", "phone": "+4915112345670",
         "push_tokens": ["fcm-no"], "timezone": "Europe/Berlin", "consent": NONE},
    ]  # fmt: skip
    assert (
        ingest_profiles(engine, rows, now=T0 - timedelta(days=1), settings=settings).rejected == []
    )


def _send(
    customer: str, channels: tuple[str, ...], choice: str = "best", send_at: str = "now"
) -> SendMessage:
    return SendMessage(
        enrollment_id=1,
        customer_id=customer,
        journey_key="j",
        version_id=1,
        step_id="nudge",
        message="cart_reminder",
        channels=channels,
        choice=choice,
        idempotency_key=f"j:1:{customer}:{choice}",
        send_after=T0,
        send_at=send_at,
    )


def _activate(engine: Engine, home: Path, version: str = "cm-test") -> Path:
    model = constant_model({"email": 0.004, "sms": 0.012, "push": 0.006}, version=version)
    path, digest = save_model(model, home / "models")
    with engine.begin() as connection:
        register_model(connection, model, path, digest)
    return home / "models" / path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path)


def test_no_consent_anywhere_is_skipped_with_its_reason_by_the_runner(
    store: Engine, settings: Settings
) -> None:
    _profiles(store, settings)
    spec = JourneySpec.model_validate(
        {
            "key": "cart",
            "trigger": {"event": "product.added"},
            "steps": [
                {"id": "nudge", "type": "send", "message": "cart_reminder", "channel": "best"}
            ],
        }
    )
    events = [
        {"id": f"add-{c}", "name": "product.added", "customer_id": c, "at": T0.isoformat(),
         "properties": {"sku": "X"}}
        for c in ("nobody", "only-email")
    ]  # fmt: skip
    ingest_events(store, events, now=T0, settings=settings)
    policy = LearnedPolicy(models_dir=settings.home / "models", costs=COSTS)
    runner = JourneyRunner(store, {"cart": spec}, {}, policy=policy)
    report = runner.run(T0 + timedelta(minutes=1))
    assert report.total("skipped:no_consent") == 1
    with store.connect() as connection:
        messages = list(connection.execute(MESSAGES.select()))
        skipped = list(
            connection.execute(JOURNEY_LOG.select().where(JOURNEY_LOG.c.kind == "skipped"))
        )
    assert [(m.customer_id, m.channel) for m in messages] == [("only-email", "email")]
    assert messages[0].decision["policy"] == "learned-v1"
    assert messages[0].decision["propensity"] == 1.0
    assert messages[0].decision["eligible"] == ["email"]
    assert [(s.customer_id, s.reason) for s in skipped] == [("nobody", "no_consent")]


def test_without_a_model_the_rule_decides(store: Engine, settings: Settings) -> None:
    _profiles(store, settings)
    policy = LearnedPolicy(models_dir=settings.home / "models", costs=COSTS, cold_epsilon=0.0)
    with store.connect() as connection:
        cold, one = policy.choose_many(
            connection,
            [_send("cold", ("email", "sms", "push")), _send("only-email", ("email",))],
            T0,
        )
    assert (cold.channel, cold.propensity, cold.model_version) == ("push", 1.0, None)
    assert cold.reason == "rule: cheapest eligible channel"
    assert (one.channel, one.reason) == ("email", "only eligible channel")


def test_an_active_model_decides_for_a_customer_without_history(
    store: Engine, settings: Settings
) -> None:
    _profiles(store, settings)
    _activate(store, settings.home)
    policy = LearnedPolicy(models_dir=settings.home / "models", costs=COSTS, value=25.0, epsilon=0)
    with store.connect() as connection:
        (decision,) = policy.choose_many(connection, [_send("cold", ("email", "sms", "push"))], T0)
    # 25 x 0.012 - 0.07 = 0.23 beats push's 25 x 0.006 = 0.15 and email's 0.099
    assert (decision.channel, decision.model_version) == ("sms", "cm-test")
    assert decision.scores == pytest.approx({"email": 0.099, "sms": 0.23, "push": 0.15}, abs=1e-3)
    assert decision.reason.startswith("model:")


def test_a_corrupt_model_is_a_clear_error_and_the_rule_takes_over(
    store: Engine, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    _profiles(store, settings)
    folder = _activate(store, settings.home)
    weights = folder / "weights.npz"
    weights.write_bytes(b"not a model")
    policy = LearnedPolicy(models_dir=settings.home / "models", costs=COSTS, cold_epsilon=0.0)
    with caplog.at_level(logging.ERROR, logger="omni_journey.channels"), store.connect() as c:
        first = policy.choose_many(c, [_send("cold", ("email", "sms", "push"))], T0)[0]
        again = policy.choose_many(c, [_send("cold", ("email", "sms"))], T0)[0]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # logged once, not once per decision
    assert "cm-test" in errors[0] and "corrupt" in errors[0] and "rule" in errors[0]
    assert (first.channel, first.model_version) == ("push", None)
    assert first.reason == "rule: cheapest eligible channel (model unavailable)"
    assert "corrupt" in first.extra["model_error"]
    assert again.channel == "email"


def test_a_model_from_older_code_is_refused(
    store: Engine, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    _profiles(store, settings)
    _activate(store, settings.home)
    with store.begin() as connection:
        connection.execute(update(CHANNEL_MODELS).values(feature_version="channels-features-v0"))
    policy = LearnedPolicy(models_dir=settings.home / "models", costs=COSTS, cold_epsilon=0.0)
    with caplog.at_level(logging.ERROR, logger="omni_journey.channels"), store.connect() as c:
        (decision,) = policy.choose_many(c, [_send("cold", ("email", "sms"))], T0)
    assert decision.channel == "email"
    assert "retrain" in caplog.text


def test_send_at_best_and_fixed_channels_in_one_batch(store: Engine, settings: Settings) -> None:
    _profiles(store, settings)
    events = [
        {"id": f"v{i}", "name": "product.viewed", "customer_id": "cold",
         "at": (T0 - timedelta(days=i, hours=-9)).isoformat(), "properties": {}}
        for i in range(1, 8)
    ]  # fmt: skip  # every evening at 19:00 UTC, 21:00 in Berlin
    ingest_events(store, events, now=T0, settings=settings)
    quiet = QuietHours(start=time(20, 30), end=time(8, 0))
    policy = LearnedPolicy(models_dir=settings.home / "models", costs=COSTS, send_time_explore=0.0)
    sends = [
        _send("cold", ("email",), "email", send_at="best"),
        _send("only-email", ("email",), "email"),
    ]
    with store.connect() as connection:
        timed, now = policy.choose_many(connection, sends, T0, quiet_hours=quiet)
    assert timed.send_after is not None
    # the customer's 21:00 is quiet: the policy takes the latest allowed hour next to it
    assert timed.send_after.astimezone(UTC).hour == 18
    assert (timed.channel, timed.reason) == ("email", "fixed channel")
    assert now.send_after is None


def test_the_decisions_are_made_from_what_was_loaded_without_the_store(
    store: Engine, settings: Settings
) -> None:
    """``load`` is the policy's only I/O: after it, the store can be gone and
    ``decide_many`` still decides exactly what ``choose_many`` decides."""
    _profiles(store, settings)
    _activate(store, settings.home)
    policy = LearnedPolicy(models_dir=settings.home / "models", costs=COSTS, epsilon=0.5)
    sends = [_send("cold", ("email", "sms", "push")), _send("only-email", ("email",))]
    with store.connect() as connection:
        together = policy.choose_many(connection, sends, T0)
        loaded = policy.load(connection, sends, T0)
    store.dispose()
    apart = policy.decide_many(loaded, sends, T0)
    assert [d.as_log() for d in apart] == [d.as_log() for d in together]
    assert apart[0].model_version == "cm-test"
