"""Ingesting announces events to Prefect, and a journey's generated trigger starts the
``advance`` flow for that journey, once per burst, on a real Prefect server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, select

from omni_journey.ingest.announce import emit_ingested, flush
from omni_journey.store.core import ENROLLMENTS, MESSAGES
from tests.integration.prefect.conftest import (
    CART,
    NUDGE,
    ROOT,
    T0,
    PrefectApi,
    Shop,
    ingested_events,
    stop_group,
    wait_for,
)

pytestmark = [pytest.mark.slow]


def test_the_ingest_flow_announces_one_event_per_event_name(
    prefect_api: PrefectApi, make_shop: Callable[..., Shop], tmp_path: Path
) -> None:
    from flows.ingest import ingest

    shop = make_shop({"quick_nudge": NUDGE})
    shop.profiles(3)
    lines = [
        {"id": f"e-{i}", "name": name, "customer_id": f"c-{i % 3}", "at": T0.isoformat()}
        for i, name in enumerate(["ingest.test_a"] * 7 + ["ingest.test_b"] * 2)
    ]
    lines.append({"id": "bad", "name": "ingest.test_a"})  # no time: rejected
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")

    state = ingest(str(path), now=T0, return_state=True)

    assert state.is_completed(), state.message
    result = state.result()
    assert (result["accepted"], result["rejected"]) == (9, 1)
    assert result["events"] == {"ingest.test_a": 7, "ingest.test_b": 2}
    found = wait_for(lambda: ingested_events("omni.event.ingest.test_a"), timeout=20)
    assert [e.payload for e in found] == [{"count": 7, "source": "ingest"}]
    [b] = wait_for(lambda: ingested_events("omni.event.ingest.test_b"), timeout=20)
    assert b.payload["count"] == 2
    assert b.resource["omni.event.name"] == "ingest.test_b"

    again = ingest(str(path), now=T0 + timedelta(minutes=1))  # all duplicates now
    assert again["events"] == {}
    flush()
    assert len(ingested_events("omni.event.ingest.test_a")) == 1


@pytest.fixture
def served_advance(
    prefect_api: PrefectApi, make_shop: Callable[..., Shop]
) -> Iterator[tuple[Shop, UUID]]:
    """``advance`` served (``prefect.serve``, 1 s polling) in a subprocess with the
    project's generated triggers; yields the shop and the deployment id."""
    from prefect.client.orchestration import get_client

    shop = make_shop({"quick_nudge": NUDGE, "quick_cart": CART})
    env = {
        **os.environ,
        **prefect_api.env(),
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.prefect.serve_advance", "advance-served"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def ready() -> Any:
            with get_client(sync_client=True) as client:
                try:
                    deployment = client.read_deployment_by_name("advance/advance-served")
                except Exception:
                    return None
                owned = [
                    a
                    for a in client.read_automations()
                    if str(deployment.id) in json.dumps(a.model_dump(mode="json"))
                ]
            return deployment.id if len(owned) == 2 else None

        deployment_id = wait_for(ready, timeout=60)
        assert deployment_id, "the served deployment and its 2 triggers never appeared"
        wait_for(lambda: False, timeout=2)  # the runner's first poll
        yield shop, deployment_id
    finally:
        stop_group(process, timeout=20)
        if process.stderr is not None:
            process.stderr.close()


def _runs_of(deployment_id: UUID) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as client:
        return list(
            client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
            )
        )


def test_a_burst_of_trigger_events_starts_one_advance_run_for_that_journey(
    served_advance: tuple[Shop, UUID],
) -> None:
    shop, deployment_id = served_advance
    customers = shop.profiles(5)
    # fresh events (the served flow runs at the wall clock, and trigger events older
    # than OMNI_TRIGGER_MAX_AGE_HOURS enter nobody); stored first, announced after
    shop.events("product.viewed", customers, at=datetime.now(UTC))
    for _ in range(3):  # a burst: three batches in a row
        assert emit_ingested({"product.viewed": len(customers)}, source="test") == 1
    flush()

    def finished() -> list[Any]:
        return [r for r in _runs_of(deployment_id) if r.state and r.state.is_final()]

    [run] = wait_for(finished, timeout=60)
    assert run.state.is_completed(), run.state.message
    assert run.parameters == {"journey": "quick_nudge", "send": True}
    assert run.name.startswith("advance-quick_nudge-")
    wait_for(lambda: False, timeout=3)  # anything else the burst would have started
    assert [r.parameters for r in _runs_of(deployment_id)] == [
        {"journey": "quick_nudge", "send": True}
    ]
    with shop.engine.connect() as connection:
        entered = connection.execute(
            select(ENROLLMENTS.c.journey_key, func.count()).group_by(ENROLLMENTS.c.journey_key)
        ).all()
        queued = connection.execute(select(func.count()).select_from(MESSAGES)).scalar_one()
    assert dict(entered) == {"quick_nudge": 5}  # quick_cart was not run
    assert queued == 5


def _dispatch_runs(since: datetime) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterStartTime,
    )

    with get_client(sync_client=True) as client:
        return list(
            client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["dispatch"])),
                flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since)),
            )
        )


def test_the_triggered_run_sends_the_message_without_a_dispatch_run(
    served_advance: tuple[Shop, UUID],
) -> None:
    """The event's message is sent (not only queued) by the run its trigger started:
    no ``dispatch`` deployment exists here, so nothing else could have sent it."""
    from omni_journey.store.core import MESSAGES as M

    shop, deployment_id = served_advance
    started = datetime.now(UTC)
    [customer] = shop.profiles(1, prefix="now")
    shop.events("product.viewed", [customer], at=datetime.now(UTC))
    assert emit_ingested({"product.viewed": 1}, source="test") == 1
    flush()

    def sent() -> list[Any]:
        with shop.engine.connect() as connection:
            return list(
                connection.execute(
                    select(M.c.status, M.c.sent_at).where(M.c.customer_id == customer)
                ).all()
            )

    def finished() -> list[Any]:
        return [
            r
            for r in _runs_of(deployment_id)
            if r.created >= started and r.state and r.state.is_final()
        ]

    [run] = wait_for(finished, timeout=60)  # (a run of another test may be listed too)
    assert run.state.is_completed(), run.state.message
    [(status, sent_at)] = sent()
    assert status == "sent" and sent_at is not None
    [email] = shop.outbox_files("email")
    assert f"{customer}@example.com" in email.read_text()
    assert _dispatch_runs(started - timedelta(seconds=1)) == []
