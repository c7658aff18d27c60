"""Publishing a journey change that removes a step customers wait on (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from omni_journey.errors import SpecError
from omni_journey.runner.passes import JourneyRunner
from omni_journey.runner.versions import in_flight_problems
from omni_journey.settings import Settings
from omni_journey.spec.diagnostics import Diagnostic
from omni_journey.spec.models import JourneySpec
from omni_journey.store import open_store
from omni_journey.store.core import ENROLLMENTS, JOURNEY_VERSIONS
from tests.integration.engine.conftest import T0, Shop, event, journey, profile

KEY = "reorder"
IDS = ["c-0", "c-1", "c-2"]


def _spec(steps: list[dict[str, Any]], versioning: dict[str, Any] | None = None) -> JourneySpec:
    data: dict[str, Any] = {"key": KEY, "trigger": {"event": "product.added"}, "steps": steps}
    if versioning is not None:
        data["versioning"] = versioning
    return journey(data)


REMIND = {"id": "remind", "type": "send", "message": "cart_reminder", "channel": "email"}
V1 = _spec([{"id": "wait", "type": "delay", "for": "2d"}, REMIND])
WITHOUT_WAIT = [{"id": "pause", "type": "delay", "for": "1d"}, REMIND]


def _enrollments(shop: Shop) -> list[Any]:
    with shop.engine.connect() as connection:
        return list(
            connection.execute(
                select(ENROLLMENTS)
                .where(ENROLLMENTS.c.journey_key == KEY)
                .order_by(ENROLLMENTS.c.customer_id)
            )
        )


def _versions(shop: Shop) -> dict[int, int]:
    """version number -> id"""
    with shop.engine.connect() as connection:
        rows = connection.execute(
            select(JOURNEY_VERSIONS.c.version, JOURNEY_VERSIONS.c.id).where(
                JOURNEY_VERSIONS.c.journey_key == KEY
            )
        )
        return {row.version: row.id for row in rows}


def _waiting_on_v1(shop: Shop) -> None:
    shop.profiles([profile(c) for c in IDS])
    shop.events([event(f"add-{c}", "product.added", c, T0) for c in IDS])
    JourneyRunner(shop.engine, {KEY: V1}, {}).run(T0 + timedelta(minutes=1))
    assert [(e.customer_id, e.step_id) for e in _enrollments(shop)] == [(c, "wait") for c in IDS]


def test_removing_a_step_customers_wait_on_is_refused_without_a_target(shop: Shop) -> None:
    _waiting_on_v1(shop)
    v2 = _spec(WITHOUT_WAIT, {"on_change": "migrate"})
    with shop.engine.connect() as connection:
        assert in_flight_problems(connection, {KEY: v2}) == [(KEY, "wait", 3)]
    with pytest.raises(SpecError) as refused:
        JourneyRunner(shop.engine, {KEY: v2}, {}).run(T0 + timedelta(hours=1))
    (diagnostic,) = refused.value.diagnostics
    assert isinstance(diagnostic, Diagnostic)
    assert diagnostic.code == "removed-step-in-use"
    assert diagnostic.path == f"journeys/{KEY}.yaml"
    assert "3 customers" in diagnostic.message and '"wait"' in diagnostic.message
    assert diagnostic.hint == "add versioning.migrate: {wait: <target step>}"
    assert list(_versions(shop)) == [1]  # nothing published
    assert {e.step_id for e in _enrollments(shop)} == {"wait"}


def test_with_a_target_the_version_is_published_and_customers_move(shop: Shop) -> None:
    _waiting_on_v1(shop)
    v2 = _spec(WITHOUT_WAIT, {"on_change": "migrate", "migrate": {"wait": "pause"}})
    with shop.engine.connect() as connection:
        assert in_flight_problems(connection, {KEY: v2}) == []
    runner = JourneyRunner(shop.engine, {KEY: v2}, {})
    runner.run(T0 + timedelta(hours=1))
    versions = _versions(shop)
    assert sorted(versions) == [1, 2]
    assert [(e.journey_version_id, e.step_id) for e in _enrollments(shop)] == [
        (versions[2], "pause")
    ] * len(IDS)
    runner.run(T0 + timedelta(days=2, minutes=1))  # the old wake-up: the pause restarts
    runner.run(T0 + timedelta(days=3, minutes=2))
    assert sorted(m.customer_id for m in shop.messages()) == IDS
    assert {m.journey_version_id for m in shop.messages()} == {versions[2]}


def test_with_keep_customers_finish_on_their_version(shop: Shop) -> None:
    _waiting_on_v1(shop)
    v2 = _spec(WITHOUT_WAIT, {"on_change": "keep"})
    with shop.engine.connect() as connection:
        assert in_flight_problems(connection, {KEY: v2}) == []
    runner = JourneyRunner(shop.engine, {KEY: v2}, {})
    runner.run(T0 + timedelta(hours=1))
    versions = _versions(shop)
    assert sorted(versions) == [1, 2]
    assert [(e.journey_version_id, e.step_id) for e in _enrollments(shop)] == [
        (versions[1], "wait")
    ] * len(IDS)
    runner.run(T0 + timedelta(days=2, minutes=1))
    assert sorted(m.customer_id for m in shop.messages()) == IDS
    assert {m.journey_version_id for m in shop.messages()} == {versions[1]}
    assert {e.state for e in _enrollments(shop)} != {"active"}


# --- omni-journey validate looks in the store too (SQLite file, via the CLI) -----------

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent / "omni-journey"
V2_YAML = """\
key: reorder
trigger:
  event: product.added
versioning:
  on_change: migrate
steps:
  - id: pause
    type: delay
    for: 1d
  - id: remind
    type: send
    message: cart_reminder
    channel: email
"""


def _validate(project: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "OMNI_PROJECT_DIR": str(project),
        "OMNI_HOME": str(home),
        "OMNI_DATABASE_URL": f"sqlite:///{home / 'omni.db'}",
    }
    return subprocess.run(
        [str(BIN), "validate", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=project,
    )


def test_validate_refuses_removing_a_step_customers_wait_on(tmp_path: Path) -> None:
    project, home = tmp_path / "project", tmp_path / "home"
    (project / "journeys").mkdir(parents=True)
    for folder in ("cart_reminder", "_partials"):
        shutil.copytree(ROOT / "templates" / folder, project / "templates" / folder)
    (project / "journeys" / "reorder.yaml").write_text(V2_YAML)

    before = _validate(project, home)  # no store yet: nothing to check, none created
    assert before.returncode == 0, before.stdout + before.stderr
    assert not (home / "omni.db").exists()

    engine = open_store(f"sqlite:///{home / 'omni.db'}")
    try:
        _waiting_on_v1(Shop(engine, Settings(home=home)))
    finally:
        engine.dispose()
    refused = _validate(project, home)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    out = json.loads(refused.stdout)
    (diagnostic,) = out["diagnostics"]
    assert diagnostic["code"] == "removed-step-in-use"
    assert diagnostic["path"] == "journeys/reorder.yaml"
    assert diagnostic["hint"] == "add versioning.migrate: {wait: <target step>}"
    assert "3 customers" in diagnostic["message"]

    (project / "journeys" / "reorder.yaml").write_text(
        V2_YAML.replace("on_change: migrate\n", "on_change: migrate\n  migrate:\n    wait: pause\n")
    )
    fixed = _validate(project, home)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
