"""The whole production path on a real Prefect server: ``prefect deploy --all`` of
``prefect.yaml``, a process worker, the repository's own journeys.

A product view is imported with ``omni-journey events import``, which announces it to
Prefect; the browse-abandonment journey's deployment trigger starts ``advance`` on the
worker; once the journey's one-hour delay has passed (``advance`` and ``dispatch`` run
as deployments with ``now`` an hour later), the message is in the file outbox. Then a
burst of 10,000 views from 2,000 customers, announced batch by batch as the collector
does, starts only a few flow runs and ends with exactly one message per eligible
customer.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, and_, select

from omni_journey.ingest.announce import emit_ingested, flush
from omni_journey.ingest.intake import ingest_events, ingest_profiles
from omni_journey.settings import Settings
from omni_journey.store import open_store
from omni_journey.store.core import ENROLLMENTS, MESSAGES
from tests.integration.prefect.conftest import ROOT, PrefectApi, stop_group, wait_for

pytestmark = [pytest.mark.slow]

BIN = Path(sys.executable).parent
JOURNEY = "browse_abandonment"


def _timezone(now: datetime) -> str:
    """A fixed-offset zone where an hour from now is early afternoon, so the journey's
    quiet hours (21:00-08:00, the customer's time) never defer the test's sends."""
    offset = (13 - (now + timedelta(hours=1)).hour) % 24
    if offset > 12:
        offset -= 24
    # POSIX sign: Etc/GMT-2 is UTC+2
    return "UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


@dataclass
class Deployed:
    api: PrefectApi
    home: Path
    engine: Engine
    settings: Settings
    env: dict[str, str]

    def profiles(self, ids: list[str], timezone: str) -> None:
        records = [
            {
                "customer_id": c,
                "email": f"{c}@example.com",
                "timezone": timezone,
                "consent": {"email": True, "sms": False, "push": False},
                "attributes": {"first_name": c.title()},
            }
            for c in ids
        ]
        for start in range(0, len(records), 1000):
            result = ingest_profiles(
                self.engine,
                records[start : start + 1000],
                now=datetime.now(UTC),
                settings=self.settings,
            )
            assert result.rejected == []

    def run(self, deployment: str, **parameters: Any) -> Any:
        from prefect.deployments import run_deployment

        run = run_deployment(deployment, parameters=parameters, timeout=240)
        assert run.state is not None and run.state.is_completed(), (run.name, run.state)
        return run


def _view(event_id: str, customer: str, at: datetime) -> dict[str, Any]:
    return {
        "id": event_id,
        "name": "product.viewed",
        "customer_id": customer,
        "at": at.isoformat(),
        "properties": {
            "sku": "SERUM-30",
            "product_name": "Vitamin C serum",
            "category": "skincare",
            "price": 29.0,
        },
    }


def _advance_runs(since: datetime) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterExpectedStartTime,
    )

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["advance"])),
            flow_run_filter=FlowRunFilter(
                expected_start_time=FlowRunFilterExpectedStartTime(after_=since)
            ),
            limit=200,
        )
    return [r for r in runs if (r.parameters or {}).get("journey") == JOURNEY]


def _finished(runs: list[Any]) -> bool:
    return bool(runs) and all(r.state is not None and r.state.is_final() for r in runs)


@pytest.fixture(scope="module")
def deployed(
    prefect_api: PrefectApi, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployed]:
    """prefect.yaml deployed on the session's server, and a process worker whose flow
    runs use a fresh SQLite store with the repository's journeys."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    home = tmp_path_factory.mktemp("e2e-home")
    omni = {
        "OMNI_HOME": str(home),
        "OMNI_PROJECT_DIR": str(ROOT),
        "OMNI_DATABASE_URL": f"sqlite:///{home / 'omni.db'}",
    }
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OMNI_")},
        **prefect_api.env(),
        **omni,
        "PYTHONPATH": str(ROOT),
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "1",
    }
    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.create_work_pool(WorkPoolCreate(name="omni-journey", type="process"))
    deploy = subprocess.run(
        [str(BIN / "prefect"), "--no-prompt", "deploy", "--all"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
    engine = open_store(omni["OMNI_DATABASE_URL"])
    worker = subprocess.Popen(
        [str(BIN / "prefect"), "worker", "start", "--pool", "omni-journey", "--type", "process"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in omni.items():
                patch.setenv(name, value)
            yield Deployed(prefect_api, home, engine, Settings(), env)
    finally:
        stop_group(worker, timeout=30)
        engine.dispose()
        with get_client(sync_client=True) as client:
            for deployment in client.read_deployments():
                if deployment.work_pool_name == "omni-journey":
                    client.delete_resource_owned_automations(f"prefect.deployment.{deployment.id}")
                    client.delete_deployment(deployment.id)


def _messages(engine: Engine, customers: list[str]) -> dict[str, list[Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(MESSAGES.c.customer_id, MESSAGES.c.status, MESSAGES.c.channel).where(
                and_(MESSAGES.c.journey_key == JOURNEY, MESSAGES.c.customer_id.in_(customers))
            )
        ).all()
    found: dict[str, list[Any]] = {}
    for row in rows:
        found.setdefault(row.customer_id, []).append(row)
    return found


def _enrolled(engine: Engine, customers: list[str]) -> dict[str, bool]:
    """{customer: in the holdout} of the customers enrolled in the journey."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(ENROLLMENTS.c.customer_id, ENROLLMENTS.c.holdout).where(
                and_(
                    ENROLLMENTS.c.journey_key == JOURNEY,
                    ENROLLMENTS.c.customer_id.in_(customers),
                )
            )
        ).all()
    return {row.customer_id: bool(row.holdout) for row in rows}


def test_a_product_view_reaches_the_outbox_through_the_deployed_flows(
    deployed: Deployed, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    customers = [f"solo-{i}" for i in range(4)]
    deployed.profiles(customers, _timezone(now))
    views = tmp_path / "views.jsonl"
    views.write_text(
        "\n".join(json.dumps(_view(f"solo-view-{c}", c, now)) for c in customers) + "\n"
    )

    started = now - timedelta(seconds=5)
    imported = subprocess.run(
        [str(BIN / "omni-journey"), "events", "import", str(views)],
        cwd=ROOT,
        env=deployed.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
    assert "accepted 4" in imported.stdout

    # the trigger starts advance for the journey on the worker: customers enter and wait
    [run] = wait_for(lambda: _finished(runs := _advance_runs(started)) and runs, timeout=120)
    assert run.state.is_completed(), run.state.message
    assert run.name.startswith(f"advance-{JOURNEY}-")
    assert f"journey:{JOURNEY}" in run.tags
    enrolled = _enrolled(deployed.engine, customers)
    assert sorted(enrolled) == customers
    assert _messages(deployed.engine, customers) == {}  # the one-hour delay holds them

    later = now + timedelta(hours=1, minutes=1)
    deployed.run("advance/advance", journey=JOURNEY, now=later.isoformat())
    deployed.run("dispatch/dispatch", now=(later + timedelta(minutes=1)).isoformat())

    messages = _messages(deployed.engine, customers)
    treated = sorted(c for c, holdout in enrolled.items() if not holdout)
    assert sorted(messages) == treated
    assert all([m.status for m in found] == ["sent"] for found in messages.values())
    emails = [
        BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        for path in (deployed.home / "outbox" / "email").rglob("*.eml")
    ]
    for customer in treated:
        [email] = [e for e in emails if e["To"] == f"{customer}@example.com"]
        text = email.get_body(("plain",))
        assert text is not None and "Vitamin C serum" in text.get_content()


def test_a_burst_of_10000_views_is_a_few_flow_runs_and_one_message_each(
    deployed: Deployed,
) -> None:
    now = datetime.now(UTC)
    customers = [f"burst-{i}" for i in range(2000)]
    deployed.profiles(customers, _timezone(now))
    started = datetime.now(UTC) - timedelta(seconds=1)
    announced = 0
    for batch in range(10):  # ten collector batches of 1,000 views, 5 per customer
        records = [
            _view(f"burst-view-{batch}-{i}", customers[(batch * 1000 + i) % 2000], now)
            for i in range(1000)
        ]
        result = ingest_events(deployed.engine, records, now=now, settings=deployed.settings)
        assert (result.accepted, result.rejected) == (1000, [])
        announced += emit_ingested({"product.viewed": result.accepted}, source="test")
    flush()
    assert announced == 10

    runs = wait_for(lambda: _finished(found := _advance_runs(started)) and found, timeout=180)
    wait_for(lambda: False, timeout=12)  # the trigger's 10 s window: anything it still starts
    runs = _advance_runs(started)
    assert 1 <= len(runs) <= 3, [r.name for r in runs]  # coalesced, not one per batch
    wait_for(lambda: _finished(_advance_runs(started)), timeout=120)
    enrolled = _enrolled(deployed.engine, customers)
    assert sorted(enrolled) == sorted(customers)  # each customer entered once

    later = now + timedelta(hours=1, minutes=1)
    deployed.run("advance/advance", journey=JOURNEY, now=later.isoformat())
    deployed.run("dispatch/dispatch", now=(later + timedelta(minutes=1)).isoformat())
    deployed.run("advance/advance", journey=JOURNEY, now=later.isoformat())  # again: no-op
    deployed.run("dispatch/dispatch", now=(later + timedelta(minutes=2)).isoformat())

    messages = _messages(deployed.engine, customers)
    treated = {c for c, holdout in enrolled.items() if not holdout}
    assert 1700 <= len(treated) <= 1900  # a 10 % holdout
    assert set(messages) == treated
    assert {c: [m.status for m in found] for c, found in messages.items()} == {
        c: ["sent"] for c in treated
    }
    recipients = [
        BytesParser(policy=policy.default).parsebytes(path.read_bytes())["To"]
        for path in (deployed.home / "outbox" / "email").rglob("*.eml")
    ]
    burst = sorted(r.split("@")[0] for r in recipients if r.startswith("burst-"))
    assert burst == sorted(treated)  # one file each, nobody twice
