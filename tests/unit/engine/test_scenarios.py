"""Whole journeys driven through a minimal service loop with a fake clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine

from omni_journey.engine import advance
from omni_journey.engine.types import Converted, EventView, ExitJourney, SendMessage
from tests.unit.engine.support import T0, Driver, FakeFacts, event, journey, run_days

CART: dict[str, Any] = {
    "key": "cart_abandonment",
    "trigger": {"event": "product.added"},
    "goal": {"event": "order.completed", "within": "3d"},
    "steps": [
        {
            "id": "bought",
            "type": "wait_for",
            "event": "order.completed",
            "timeout": "1h",
            "on_event": "done",
        },
        {"id": "remind", "type": "send", "message": "cart_reminder", "channel": "best"},
        {"id": "done", "type": "exit", "reason": "finished"},
    ],
}


def shoppers(n: int) -> tuple[list[str], list[str], list[EventView]]:
    """n customers add to cart through a day; the even ones buy within the hour."""
    events = []
    buyers, others = [], []
    for i in range(n):
        customer = f"c{i:03d}"
        added = T0 + timedelta(minutes=7 * i)
        events.append(event("product.added", customer, added, seq=2 * i))
        if i % 2 == 0:
            buyers.append(customer)
            paid = added + timedelta(minutes=5 + (i * 13) % 50)  # 5..54 minutes later
            events.append(event("order.completed", customer, paid, seq=2 * i + 1))
        else:
            others.append(customer)
    return buyers, others, events


@pytest.mark.parametrize("tick", [timedelta(minutes=10), timedelta(hours=3)])
def test_cart_abandonment_reminds_exactly_those_who_did_not_buy(tick: timedelta) -> None:
    buyers, others, events = shoppers(200)
    driver = Driver(journey(**CART), FakeFacts())
    run_days(driver, events, T0 - tick, ticks=int(timedelta(days=2) / tick), step=tick)
    reminded = sorted(s.customer_id for s in driver.of(SendMessage))
    assert reminded == sorted(others)
    assert sorted(c.customer_id for c in driver.of(Converted)) == sorted(buyers)
    assert {e.reason for e in driver.of(ExitJourney)} == {"finished"}
    assert all(s.state == "exited" for s in driver.states.values())
    if tick == timedelta(minutes=10):  # a reminder goes at the first pass after the hour
        for send in driver.of(SendMessage):
            added = next(e.at for e in events if e.customer_id == send.customer_id)
            assert timedelta(hours=1) <= send.send_after - added < timedelta(hours=1) + tick


def test_exit_when_a_purchase_after_the_wait_but_before_the_pass() -> None:
    """A 3 h pass: the reminder was due at 1 h, but the customer bought at 2 h."""
    spec = {**CART, "exit_when": [{"event": "order.completed"}]}
    driver = Driver(journey(**spec), FakeFacts())
    events = [
        event("product.added", "c1", T0, seq=1),
        event("order.completed", "c1", T0 + timedelta(hours=2), seq=2),
    ]
    run_days(driver, events, T0 - timedelta(hours=1), ticks=3, step=timedelta(hours=3))
    assert driver.of(SendMessage) == []
    assert [e.reason for e in driver.of(ExitJourney)] == ["exit_when:order.completed"]


def test_the_engine_never_reads_the_wall_clock() -> None:
    j = journey(**CART)
    _, _, events = shoppers(10)
    driver = Driver(j, FakeFacts())
    run_days(driver, events, T0, ticks=2, step=timedelta(hours=1))
    states = list(driver.states.values())
    now = T0 + timedelta(hours=5)
    results = []
    for wall in ("2001-01-01 00:00", "2099-06-30 23:59"):
        with time_machine.travel(wall, tick=False):
            results.append(advance(j, states, {}, FakeFacts(), now))
    assert results[0] == results[1]
