"""The flows on a real Prefect API and a real SQLite store: names, tags, artifacts,
task counts (one per journey or batch, never one per customer), failed send batches."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, select

from omni_journey.store.core import ENROLLMENTS
from tests.integration.prefect.conftest import (
    CART,
    CRM,
    NUDGE,
    REACHABLE,
    T0,
    PrefectApi,
    Shop,
    task_runs_of,
    wait_for,
)

pytestmark = [pytest.mark.slow]


def _flow_run(run_id: UUID) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id)


def _artifacts(run_id: UUID) -> dict[str, Any]:
    """{key (or type for unkeyed ones): data} of the artifacts a flow run created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])),
            limit=100,
        )
    result: dict[str, Any] = {}
    for artifact in found:
        data = artifact.data
        if artifact.type == "table" and isinstance(data, str):
            data = json.loads(data)
        result[artifact.key or f"({artifact.type})"] = data
    return result


def _settled_task_runs(run_id: UUID, expected: int) -> list[Any]:
    """Task runs reach the API through events: wait until ``expected`` arrived, then a
    little longer, so an extra one would be seen too."""
    wait_for(lambda: len(task_runs_of(run_id)) >= expected, timeout=30)
    wait_for(lambda: False, timeout=1.0)
    return task_runs_of(run_id)


def test_advance_runs_one_task_per_journey_and_publishes_step_counts(
    prefect_api: PrefectApi, make_shop: Callable[..., Shop]
) -> None:
    from flows.advance import advance

    shop = make_shop({"quick_nudge": NUDGE, "quick_cart": CART})
    customers = shop.profiles(40)
    shop.events("product.viewed", customers)
    shop.events("product.added", customers[:10])

    state = advance(now=T0 + timedelta(minutes=1), return_state=True)

    assert state.is_completed(), state.message
    assert state.result() == {
        "quick_cart": {"advanced": 10, "entered": 10},
        "quick_nudge": {
            "advanced": 40,
            "completed": 40,
            "entered": 40,
            "queued": 40,
            "queued:email": 40,
        },
    }
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    assert _flow_run(run_id).name == "advance-all-2026-05-01T10:01"
    tasks = _settled_task_runs(run_id, expected=2)
    assert sorted(t.name for t in tasks) == ["advance-quick_cart", "advance-quick_nudge"]
    # tags on the flow run, not on its tasks (a tagged task run waits for tag slots)
    assert {"journey:quick_nudge", "journey:quick_cart", "channel:email"} <= set(
        _flow_run(run_id).tags
    )
    assert all(t.tags == [] for t in tasks)
    artifacts = _artifacts(run_id)
    nudge = {row["step"]: row for row in artifacts["advance-quick-nudge"]}
    assert nudge["(journey)"]["entered"] == 40
    assert nudge["(journey)"]["exited"] == 40
    assert nudge["nudge"]["entered"] == 40
    assert nudge["nudge"]["sent_email"] == 40
    assert nudge["nudge"]["skipped"] == 0
    assert nudge["nudge"]["deferred"] == 0  # no quiet hours in this journey
    cart = {row["step"]: row for row in artifacts["advance-quick-cart"]}
    assert cart["settle"]["entered"] == 10
    assert cart["settle"]["waiting"] == 10
    assert cart["remind"]["sent_email"] == 0
    summary = artifacts["advance-all-summary"]
    assert "quick_nudge" in summary
    assert "queued 40 (email 40)" in summary
    assert "@example.com" not in json.dumps(artifacts)  # counts, never addresses


def test_advance_one_journey_is_named_and_tagged_for_it(
    prefect_api: PrefectApi, make_shop: Callable[..., Shop]
) -> None:
    from flows.advance import advance

    shop = make_shop({"quick_nudge": NUDGE, "quick_cart": CART})
    customers = shop.profiles(3)
    shop.events("product.added", customers)

    state = advance(journey="quick_cart", now=T0, return_state=True)

    assert state.is_completed(), state.message
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    run = _flow_run(run_id)
    assert run.name == "advance-quick_cart-2026-05-01T10:00"
    assert "journey:quick_cart" in run.tags
    assert [t.name for t in _settled_task_runs(run_id, expected=1)] == ["advance-quick_cart"]
    assert set(_artifacts(run_id)) >= {"advance-quick-cart", "advance-quick-cart-summary"}


def test_dispatch_sends_in_batch_tasks_not_one_per_message(
    prefect_api: PrefectApi, make_shop: Callable[..., Shop], monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.advance import advance
    from flows.dispatch import dispatch_outbox

    monkeypatch.setattr("flows._artifacts.PROGRESS_AFTER_SECONDS", 0.0)  # long runs only
    shop = make_shop({"quick_nudge": NUDGE}, dispatch_batch_size="15")
    customers = shop.profiles(40)
    shop.events("product.viewed", customers)
    assert advance(now=T0, return_state=True).is_completed()

    state = dispatch_outbox(now=T0 + timedelta(minutes=1), return_state=True)

    assert state.is_completed(), state.message
    result = state.result()
    assert (result["claimed"], result["sent"], result["batches"]) == (40, 40, 3)
    assert len(shop.outbox_files("email")) == 40
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    assert _flow_run(run_id).name == "dispatch-2026-05-01T10:01"
    tasks = _settled_task_runs(run_id, expected=math.ceil(40 / 15))
    assert sorted(t.name for t in tasks) == ["send-batch-1", "send-batch-2", "send-batch-3"]
    artifacts = _artifacts(run_id)
    rows = {row["provider"]: row for row in artifacts["dispatch"]}
    assert rows["(all)"]["sent"] == 40
    assert rows["file"]["sent"] == 40
    assert "claimed 40: sent 40" in artifacts["dispatch-summary"]
    assert "(progress)" in artifacts  # 40 due > one batch of 15


def test_dispatch_lists_the_messages_in_doubt_in_an_artifact(
    prefect_api: PrefectApi, make_shop: Callable[..., Shop]
) -> None:
    from flows.advance import advance
    from flows.dispatch import dispatch_outbox
    from omni_journey.store.core import MESSAGES

    shop = make_shop({"quick_nudge": NUDGE})
    customers = shop.profiles(3)
    shop.events("product.viewed", customers)
    assert advance(now=T0, return_state=True).is_completed()
    since = T0 - timedelta(hours=1)
    with shop.engine.begin() as connection:  # as a pass leaves a message failed in doubt
        first = connection.execute(select(func.min(MESSAGES.c.id))).scalar_one()
        connection.execute(
            MESSAGES.update()
            .where(MESSAGES.c.id == first)
            .values(status="failed", provider="ses", in_flight_since=since,
                    error="ses: in_doubt: a sender crashed during the provider call")
        )  # fmt: skip

    state = dispatch_outbox(now=T0 + timedelta(minutes=1), return_state=True)

    assert state.is_completed(), state.message
    assert state.result()["sent"] == 2
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    artifacts = _artifacts(run_id)
    [row] = artifacts["dispatch-in-doubt"]
    assert row == {
        "id": first, "journey": "quick_nudge", "step": row["step"], "channel": "email",
        "provider": "ses", "since": since.isoformat(), "state": "failed",
    }  # fmt: skip
    assert row["step"]
    assert "1 messages in doubt" in artifacts["dispatch-summary"]
    assert "@example.com" not in json.dumps(artifacts)  # ids, never addresses


def test_a_failed_send_batch_is_a_failed_task_with_the_reason(
    prefect_api: PrefectApi, make_shop: Callable[..., Shop], failing_webhook: str
) -> None:
    from flows.advance import advance
    from flows.dispatch import dispatch_outbox

    shop = make_shop({"crm_ping": CRM.format(url=failing_webhook)}, webhook_provider="webhook")
    customers = shop.profiles(2)
    shop.events("order.completed", customers)
    assert advance(now=T0, return_state=True).is_completed()

    state = dispatch_outbox(now=T0, return_state=True)

    assert state.is_failed()
    assert "webhook:http_503" in (state.message or "")
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    [batch] = _settled_task_runs(run_id, expected=1)
    assert batch.name == "send-batch-1"
    assert batch.state is not None and batch.state.is_failed()
    assert "webhook:http_503 x2" in (batch.state.message or "")
    assert batch.run_count == 1  # the dispatcher retries each message, not Prefect the batch
    errors = {row["error"]: row["count"] for row in _table_from_summary(run_id)}
    assert errors == {"webhook:http_503": 2}


def _table_from_summary(run_id: UUID) -> list[dict[str, Any]]:
    summary: str = _artifacts(run_id)["dispatch-summary"]
    errors = summary.split("## Errors", 1)[1].split("##", 1)[0]
    rows = [line for line in errors.splitlines() if line.startswith("| webhook")]
    return [{"error": r.split("|")[1].strip(), "count": int(r.split("|")[2])} for r in rows]


def test_segments_purchase_cycles_and_training_run_as_few_tasks_with_artifacts(
    prefect_api: PrefectApi, make_shop: Callable[..., Shop]
) -> None:
    from flows.purchase_cycles import purchase_cycles
    from flows.segments import segments_flow
    from flows.train import train_channel_model

    shop = make_shop({"quick_nudge": NUDGE}, {"reachable": REACHABLE})
    shop.profiles(12)

    first = segments_flow(now=T0, return_state=True)
    assert first.is_completed(), first.message
    assert first.result() == {"reachable": {"members": 12, "entered": 12, "left": 0}}
    run_id = first.state_details.flow_run_id
    assert run_id is not None
    assert _flow_run(run_id).name == "segments-all-2026-05-01T10:00"
    assert sorted(t.name for t in _settled_task_runs(run_id, expected=2)) == [
        "fan-out-catalogue",
        "segment-reachable",
    ]
    [row] = _artifacts(run_id)["segments"]
    assert (row["members"], row["first_evaluation"]) == (12, True)

    cycles = purchase_cycles(now=T0, return_state=True)
    assert cycles.is_completed(), cycles.message
    assert cycles.result()["series"] == 0
    cycles_id = cycles.state_details.flow_run_id
    assert cycles_id is not None
    assert "purchase-cycles-summary" in _artifacts(cycles_id)

    trained = train_channel_model(now=T0, return_state=True)
    assert trained.is_completed(), trained.message
    assert trained.result()["version"] is None
    assert "not enough data" in trained.result()["reason"]
    trained_id = trained.state_details.flow_run_id
    assert trained_id is not None
    assert "not enough data" in _artifacts(trained_id)["train-channel-model-summary"]


def test_a_second_run_waits_while_another_holds_the_journey(
    prefect_api: PrefectApi, make_shop: Callable[..., Shop]
) -> None:
    from prefect.concurrency.sync import concurrency

    from flows._common import ensure_journey_locks, lock_name
    from flows.advance import advance

    shop = make_shop({"quick_nudge": NUDGE})
    shop.events("product.viewed", shop.profiles(3))
    ensure_journey_locks(["quick_nudge"])
    states: list[Any] = []
    with concurrency(lock_name("quick_nudge"), occupy=1, timeout_seconds=30):
        second = threading.Thread(
            target=lambda: states.append(advance(journey="quick_nudge", now=T0, return_state=True))
        )
        second.start()
        wait_for(lambda: False, timeout=4)  # the other run holds the journey
        assert states == []
        with shop.engine.connect() as connection:
            assert connection.execute(select(func.count()).select_from(ENROLLMENTS)).scalar() == 0
    second.join(timeout=60)
    [state] = states
    assert state.is_completed(), state.message
    assert state.result()["quick_nudge"]["entered"] == 3
