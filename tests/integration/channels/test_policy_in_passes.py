"""``OMNI_CHANNEL_POLICY`` decides ``channel: best`` in real passes: ``omni-journey run``
in a child Python on a real SQLite file and on PostgreSQL, with a model trained on a
small simulated shop, a model that is active, none, or corrupt, and ``rule``.

Each decision is read back from ``messages.decision`` and the journey log; the child
reports the heavy packages it imported (scikit-learn is for training, never a pass).
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from omni_journey.channels.artefacts import register_model, save_model
from omni_journey.channels.learned import LearnedPolicy, parse_costs
from omni_journey.channels.policy import RulePolicy, rule_channel
from omni_journey.channels.train import train_from_store
from omni_journey.ingest.intake import ingest_events, ingest_profiles
from omni_journey.service.pipeline import build_runner, load_valid_project
from omni_journey.settings import Settings
from omni_journey.store import open_store
from omni_journey.store.core import JOURNEY_LOG, MESSAGES
from tests.integration.channels.conftest import by, simulated_shop
from tests.unit.channels.support import constant_model
from tests.unit.test_startup import ROOT, run_in_process

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
ALL = {"email": True, "sms": True, "push": True, "whatsapp": True}
JOURNEY = """\
key: nudge
trigger:
  event: product.added
steps:
  - id: nudge
    type: send
    message: cart_reminder
    channel: best
"""
# sms scores 25 x 0.012 - 0.07 = 0.23, above push (0.15), whatsapp (0.19), email (0.099)
SMS_FIRST = {"email": 0.004, "sms": 0.012, "push": 0.006, "whatsapp": 0.01}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with one journey that asks the policy (``channel: best``)."""
    root = tmp_path / "project"
    (root / "journeys").mkdir(parents=True)
    (root / "segments").mkdir()
    (root / "journeys" / "nudge.yaml").write_text(JOURNEY)
    for name in ("cart_reminder", "_partials"):
        shutil.copytree(ROOT / "templates" / name, root / "templates" / name)
    return root


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _run_pass(
    project: Path, home: Path, engine: Engine, now: datetime, **env: str
) -> tuple[dict[str, Any], str]:
    """``omni-journey run --no-dispatch`` in a child Python: its record and output."""
    [record], printed = run_in_process(
        [["run", "--no-dispatch", "--now", now.isoformat()]],
        home.parent,
        cwd=ROOT,
        OMNI_PROJECT_DIR=str(project),
        OMNI_HOME=str(home),
        OMNI_DATABASE_URL=_url(engine),
        **env,
    )
    assert record["code"] == 0, printed
    return record, printed


def _added(engine: Engine, customers: list[str], at: datetime, settings: Settings) -> None:
    events = [
        {"id": f"add-{c}-{at:%H%M}", "name": "product.added", "customer_id": c,
         "at": at.isoformat(), "properties": {"sku": "X"}}
        for c in customers
    ]  # fmt: skip
    assert ingest_events(engine, events, now=at, settings=settings).rejected == []


def _profiles(engine: Engine, count: int, settings: Settings) -> list[str]:
    rows = [
        {"customer_id": f"c-{n}", "email": f"c{n}@example.com", "phone": f"+49151123456{n:02d}",
         "push_tokens": [f"tok-{n}"], "timezone": "Europe/Berlin", "consent": ALL}
        for n in range(count)
    ]  # fmt: skip
    assert (
        ingest_profiles(engine, rows, now=T0 - timedelta(days=1), settings=settings).rejected == []
    )
    return [str(row["customer_id"]) for row in rows]


def _decisions(engine: Engine, customers: list[str]) -> dict[str, dict[str, Any]]:
    """Each customer's decision, from the outbox; the journey log must hold the same."""
    with engine.connect() as connection:
        sent = connection.execute(
            select(MESSAGES.c.customer_id, MESSAGES.c.channel, MESSAGES.c.decision).where(
                MESSAGES.c.customer_id.in_(customers)
            )
        ).all()
        logged = connection.execute(
            select(JOURNEY_LOG.c.customer_id, JOURNEY_LOG.c.reason, JOURNEY_LOG.c.detail).where(
                JOURNEY_LOG.c.customer_id.in_(customers), JOURNEY_LOG.c.kind == "sent"
            )
        ).all()
    found = {row.customer_id: row.decision for row in sent}
    assert sorted(found) == sorted(customers)
    assert all(row.channel == row.decision["channel"] for row in sent)
    assert {row.customer_id: row.detail["decision"] for row in logged} == found
    assert all(row.reason == found[row.customer_id]["channel"] for row in logged)
    return found


def _well_formed(decision: dict[str, Any]) -> None:
    """A draw from a distribution: the chosen channel's probability is its propensity."""
    probabilities = decision["probabilities"]
    assert set(probabilities) == set(decision["eligible"])
    assert math.isclose(sum(probabilities.values()), 1.0)
    assert 0.0 < decision["propensity"] <= 1.0
    assert decision["propensity"] == probabilities[decision["channel"]]
    assert decision["choice"] == "best"


def _weights(home: Path, version: str) -> Path:
    return home / "models" / version / "weights.npz"


def _activate(engine: Engine, home: Path, version: str) -> None:
    model = constant_model(SMS_FIRST, version=version)
    path, digest = save_model(model, home / "models")
    with engine.begin() as connection:
        register_model(connection, model, path, digest)


# --- a model trained on a small shop --------------------------------------------------------


def test_a_trained_model_decides_the_pass_and_rule_overrides_it(
    project: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    engine = open_store(f"sqlite:///{home / 'omni.db'}")
    sim = simulated_shop(engine, home, seed=21, customers=600, days=30)
    explorer = LearnedPolicy(costs=parse_costs(Settings().channel_costs), cold_epsilon=1.0)
    for week in range(3):  # random channels: something for the model to learn
        sim.round(by(explorer), sim.reachable(), f"w{week}")
    trained = train_from_store(engine, models_dir=home / "models", now=sim.now, min_conversions=20)
    assert trained.model is not None, trained.reason
    version = trained.model.version
    reachable = sim.reachable()
    first, second = reachable[:200], reachable[200:300]
    _added(engine, first, sim.now, sim.settings)

    # a small shop converts rarely: at the default costs the free channels win whatever the
    # model says (as the rule's push, then email); messages that cost nothing leave the
    # choice to the model's conversion probabilities
    free = {"OMNI_CHANNEL_COSTS": "push=0"}
    record, printed = _run_pass(project, home, engine, sim.now + timedelta(minutes=1), **free)
    assert f"channel policy: learned, model {version}" in printed
    assert record["heavy"] == []  # scoring a model needs numpy only
    decisions = _decisions(engine, first)
    differ = 0
    for decision in decisions.values():
        _well_formed(decision)
        assert decision["policy"] == "learned-v1" and decision["model_version"] == version
        scores = decision["scores"]
        if len(decision["eligible"]) > 1:
            assert set(scores) == set(decision["eligible"])
            assert set(decision["extra"]["p_convert"]) == set(decision["eligible"])
        if not decision["explored"]:  # the model's pick: the best expected value minus cost
            assert decision["channel"] == max(scores, key=scores.__getitem__)
            differ += decision["channel"] != rule_channel(decision["eligible"])
    assert differ > 0  # where the model says another channel pays more, it is not the rule's
    assert sum(d["explored"] for d in decisions.values()) < len(decisions) / 4

    customer = first[0]
    explained = run_in_process(
        [["explain", customer, "--journey", "nudge", "--json"]],
        tmp_path,
        OMNI_PROJECT_DIR=str(project),
        OMNI_HOME=str(home),
        OMNI_DATABASE_URL=_url(engine),
    )[1]
    document = json.loads(explained)
    [sent] = [d for d in document["decisions"] if d["outcome"] == "sent"]
    assert sent["inputs"]["decision"] == decisions[customer]  # policy, scores, propensity

    later = sim.now + timedelta(hours=1)
    _added(engine, second, later, sim.settings)
    _, printed = _run_pass(project, home, engine, later, OMNI_CHANNEL_POLICY="rule")
    assert "channel policy: rule (OMNI_CHANNEL_POLICY=rule)" in printed
    for decision in _decisions(engine, second).values():
        assert decision["policy"] == RulePolicy.name and decision["model_version"] is None
        assert decision["channel"] == rule_channel(decision["eligible"])
        assert decision["propensity"] == 1.0
    engine.dispose()


# --- no model, an active model, a corrupt model: SQLite and PostgreSQL ----------------------


def test_without_a_model_the_rule_decides_and_the_output_says_why(
    store: Engine, project: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home)
    customers = _profiles(store, 12, settings)
    _added(store, customers, T0, settings)
    record, printed = _run_pass(project, home, store, T0 + timedelta(minutes=1))
    assert "channel policy: rule (no trained model; run omni-journey train)" in printed
    assert "explores 20% of best-channel decisions" in printed  # OMNI_CHANNEL_COLD_EPSILON
    assert record["heavy"] == []  # no scikit-learn, no scipy
    decisions = _decisions(store, customers)
    for decision in decisions.values():
        _well_formed(decision)
        assert decision["policy"] == "learned-v1" and decision["model_version"] is None
        assert "model_error" not in decision["extra"]
        if not decision["explored"]:
            assert decision["channel"] == "push"  # the rule: the cheapest eligible channel
            assert decision["reason"] == "rule: cheapest eligible channel"
            assert decision["propensity"] == pytest.approx(0.8 + 0.2 / 4)


def test_an_active_model_decides_where_it_differs_from_the_rule(
    store: Engine, project: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home)
    customers = _profiles(store, 12, settings)
    _activate(store, home, "cm-sms-first")
    _added(store, customers, T0, settings)
    record, printed = _run_pass(project, home, store, T0 + timedelta(minutes=1))
    assert "channel policy: learned, model cm-sms-first" in printed
    assert "explores 5% of best-channel decisions" in printed  # OMNI_CHANNEL_EPSILON
    assert record["heavy"] == []
    decisions = _decisions(store, customers)
    assert not all(d["explored"] for d in decisions.values())
    for decision in decisions.values():
        _well_formed(decision)
        assert decision["model_version"] == "cm-sms-first"
        assert decision["scores"]["sms"] == pytest.approx(25 * 0.012 - 0.07, rel=1e-3)
        if not decision["explored"]:
            assert decision["channel"] == "sms"  # the rule would have said push
            assert decision["reason"] == "model: highest expected value minus cost"
            assert decision["propensity"] == pytest.approx(0.95 + 0.05 / 4)


def test_a_corrupt_model_falls_back_to_the_rule_loudly_and_the_pass_goes_on(
    store: Engine, project: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home)
    customers = _profiles(store, 6, settings)
    _activate(store, home, "cm-broken")
    weights = _weights(home, "cm-broken")
    weights.write_bytes(weights.read_bytes()[:100])
    _added(store, customers, T0, settings)
    _, printed = _run_pass(
        project, home, store, T0 + timedelta(minutes=1), OMNI_CHANNEL_COLD_EPSILON="0"
    )
    note = next(line for line in printed.splitlines() if line.startswith("channel policy:"))
    assert note.startswith("channel policy: rule (channel model cm-broken: ")
    assert str(weights) in note and "train a new model: omni-journey train" in note
    for decision in _decisions(store, customers).values():  # every customer still queued
        assert decision["channel"] == "push" and decision["propensity"] == 1.0
        assert decision["model_version"] is None
        assert decision["reason"] == "rule: cheapest eligible channel (model unavailable)"
        assert str(weights) in decision["extra"]["model_error"]


# --- every entry point goes through build_runner ------------------------------------------


def test_flows_the_demo_and_the_cli_build_their_runner_with_build_runner() -> None:
    """No second wiring: the advance flow, the demo's passes and ``run`` all call
    ``build_runner`` (``simulate`` replays in a throw-away store: no model to load)."""
    sources = [*(ROOT / "flows").glob("*.py"), *(ROOT / "omni_journey" / "lab").glob("*.py")]
    sources += (ROOT / "omni_journey" / "cli").glob("*.py")
    built = {p.name for p in sources if re.search(r"\bbuild_runner\(", p.read_text())}
    assert {"advance.py", "direct.py", "run_cmd.py"} <= built
    assert [p.name for p in sources if "JourneyRunner(" in p.read_text()] == []


def test_build_runner_uses_the_settings_policy_and_logs_which(
    sqlite_store: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        home=tmp_path,
        project_dir=ROOT,
        channel_conversion_value=40.0,
        channel_costs="sms=0.09",
        channel_epsilon=0.1,
    )
    project = load_valid_project(settings)
    _activate(sqlite_store, tmp_path, "cm-logged")
    with caplog.at_level(logging.INFO, logger="omni_journey.service"):
        runner = build_runner(sqlite_store, project, settings)
    policy = runner.policy
    assert isinstance(policy, LearnedPolicy)
    assert (policy.value, policy.costs["sms"], policy.epsilon) == (40.0, 0.09, 0.1)
    assert "channel policy: learned, model cm-logged" in caplog.text
    rule = build_runner(
        sqlite_store, project, settings.model_copy(update={"channel_policy": "rule"})
    )
    assert isinstance(rule.policy, RulePolicy)
