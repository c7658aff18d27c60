"""``advance(send=True)`` (what a journey's trigger starts) sends what its pass queued,
on a real Prefect API and a real SQLite store: only messages due now, one sender at a
time with ``dispatch`` (the ``dispatch-sender`` slot), failures reported."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from omni_journey.store.core import MESSAGES
from tests.integration.prefect.conftest import (
    CRM,
    NUDGE,
    T0,
    PrefectApi,
    Shop,
    task_runs_of,
    wait_for,
)
from tests.support.outbox import add_message

pytestmark = [pytest.mark.slow]


def _statuses(shop: Shop) -> dict[str, tuple[str, object]]:
    """{customer: (status, sent_at)} of the outbox."""
    with shop.engine.connect() as connection:
        rows = connection.execute(
            select(MESSAGES.c.customer_id, MESSAGES.c.status, MESSAGES.c.sent_at)
        ).all()
    return {row.customer_id: (row.status, row.sent_at) for row in rows}


def test_a_sending_pass_sends_what_it_queued_and_nothing_not_yet_due(
    prefect_api: PrefectApi, make_shop: Callable[..., Shop]
) -> None:
    from flows.advance import advance

    shop = make_shop({"quick_nudge": NUDGE})
    customers = shop.profiles(3)
    shop.events("product.viewed", customers[:2])
    later = add_message(  # queued earlier, for tomorrow
        shop.engine, "later-1", customers[2], "email", send_after=T0 + timedelta(days=1)
    )

    state = advance(journey="quick_nudge", now=T0, send=True, return_state=True)

    assert state.is_completed(), state.message
    assert state.result()["quick_nudge"]["queued"] == 2
    found = _statuses(shop)
    assert {c: s for c, (s, _) in found.items()} == {
        customers[0]: "sent",
        customers[1]: "sent",
        customers[2]: "pending",  # not due: left for its time
    }
    assert all(found[c][1] is not None for c in customers[:2])
    assert len(shop.outbox_files("email")) == 2
    with shop.engine.connect() as connection:
        assert (
            connection.execute(select(MESSAGES.c.status).where(MESSAGES.c.id == later)).scalar_one()
            == "pending"
        )
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    wait_for(lambda: len(task_runs_of(run_id)) >= 2, timeout=30)
    assert sorted(t.name for t in task_runs_of(run_id)) == ["advance-quick_nudge", "send-batch-1"]


def test_without_send_the_pass_only_queues(
    prefect_api: PrefectApi, make_shop: Callable[..., Shop]
) -> None:
    from flows.advance import advance

    shop = make_shop({"quick_nudge": NUDGE})
    customers = shop.profiles(2)
    shop.events("product.viewed", customers)

    assert advance(journey="quick_nudge", now=T0, return_state=True).is_completed()

    assert {s for s, _ in _statuses(shop).values()} == {"pending"}
    assert shop.outbox_files("email") == []


def test_a_pass_leaves_its_messages_to_a_dispatch_run_that_is_sending(
    prefect_api: PrefectApi, make_shop: Callable[..., Shop], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two senders never overlap (the rate limits are per process): while another run
    holds the ``dispatch-sender`` slot, the pass queues and leaves the sending to it."""
    import flows.advance
    from flows._sending import sender_slot
    from flows.dispatch import dispatch_outbox

    monkeypatch.setattr(flows.advance, "SENDER_WAIT_SECONDS", 1)
    shop = make_shop({"quick_nudge": NUDGE})
    customers = shop.profiles(2)
    shop.events("product.viewed", customers)

    with sender_slot(timeout_seconds=30):  # a dispatch run sending right now
        state = flows.advance.advance(journey="quick_nudge", now=T0, send=True, return_state=True)
        assert state.is_completed(), state.message
        assert {s for s, _ in _statuses(shop).values()} == {"pending"}

    result = dispatch_outbox(now=T0 + timedelta(seconds=5))  # the slot is free again
    assert result["sent"] == 2
    assert {s for s, _ in _statuses(shop).values()} == {"sent"}


def test_a_dispatch_run_waits_for_a_sending_pass_then_sends_nothing_twice(
    prefect_api: PrefectApi, make_shop: Callable[..., Shop], monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows.dispatch
    from flows._sending import sender_slot

    monkeypatch.setattr(flows.dispatch, "SENDER_WAIT_SECONDS", 1)
    shop = make_shop({"quick_nudge": NUDGE})
    customers = shop.profiles(2)
    shop.events("product.viewed", customers)
    from flows.advance import advance

    assert advance(journey="quick_nudge", now=T0, return_state=True).is_completed()

    with sender_slot(timeout_seconds=30):  # an advance run sending
        held = flows.dispatch.dispatch_outbox(now=T0, return_state=True)
    assert held.is_completed(), held.message
    assert held.result()["batches"] == 0  # it waited, then left the outbox alone
    assert {s for s, _ in _statuses(shop).values()} == {"pending"}


def test_a_failed_send_fails_the_run_after_the_pass_is_recorded(
    prefect_api: PrefectApi, make_shop: Callable[..., Shop], failing_webhook: str
) -> None:
    from flows.advance import advance

    shop = make_shop({"crm_ping": CRM.format(url=failing_webhook)}, webhook_provider="webhook")
    customers = shop.profiles(2)
    shop.events("order.completed", customers)

    state = advance(journey="crm_ping", now=T0, send=True, return_state=True)

    assert state.is_failed()
    assert "send batches failed" in (state.message or "")
    assert "webhook:http_503" in (state.message or "")
    # the pass itself was committed: both calls queued, each recorded for a retry
    found = _statuses(shop)
    assert sorted(found) == sorted(customers)
    assert {s for s, _ in found.values()} == {"pending"}
