"""Purchase-cycle reminders on the store: emission, idempotence, cancellation, and how
often the trigger fires for cyclic and for random buyers over weeks of daily runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, select

from omni_journey.cycles.daily import (
    PURCHASE_CYCLE_DUE,
    load_category_purchases,
    purchase_cycle_event_id,
    run_purchase_cycles,
)
from omni_journey.lab.synthetic_orders import Order, generate_orders, order_events
from omni_journey.store.tables import metadata

START = datetime(2025, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
events = metadata.tables["events"]
cycles = metadata.tables["purchase_cycles"]


def add_orders(engine: Engine, orders: list[Order], *, prefix: str = "") -> None:
    rows = list(order_events(orders, received_at=START))
    for row in rows:
        row["event_id"] = prefix + row["event_id"]
    with engine.begin() as connection:
        connection.execute(insert(events), rows)


def every(days: float, count: int, customer: str = "ana", category: str = "coffee") -> list[Order]:
    return [Order(START + n * days * DAY, customer, category, 10.0) for n in range(count)]


def due_events(engine: Engine) -> list[tuple[str, str, dict[str, object]]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(events.c.event_id, events.c.customer_id, events.c.properties)
            .where(events.c.name == PURCHASE_CYCLE_DUE)
            .order_by(events.c.seq)
        ).all()
    return [(r.event_id, r.customer_id, r.properties) for r in rows]


def test_categories_come_from_order_products(store: Engine) -> None:
    with store.begin() as connection:
        connection.execute(
            insert(events),
            [
                {
                    "event_id": "o1",
                    "name": "order.completed",
                    "customer_id": "ana",
                    "at": START,
                    "received_at": START,
                    "properties": {
                        "products": [
                            {"sku": "A", "category": "coffee"},
                            {"sku": "B", "category": "coffee"},
                            {"sku": "C", "category": "tea"},
                            {"sku": "D"},
                        ]
                    },
                },
                {
                    "event_id": "o2",
                    "name": "order.completed",
                    "customer_id": "ben",
                    "at": START,
                    "received_at": START,
                    "properties": {"products": "not a list", "total": 3},
                },
            ],
        )
    with store.connect() as connection:
        series = load_category_purchases(connection, now=START + DAY)
    assert series == {("ana", "coffee"): [START], ("ana", "tea"): [START]}


def test_a_regular_buyer_is_reminded_once_early_in_the_window(store: Engine) -> None:
    # six regular coffee buyers teach the category; ana is one of them
    orders = [o for n in range(6) for o in every(14 + n * 0.3, 7, customer=f"c{n}")]
    orders += every(14, 8, customer="ana")
    add_orders(store, orders)
    last = START + 7 * 14 * DAY
    quiet = run_purchase_cycles(store, now=last + DAY)
    assert quiet.emitted == 0 and quiet.regular == 7  # nothing due yet; c0 expired
    with store.connect() as connection:
        ana = connection.execute(select(cycles).where(cycles.c.customer_id == "ana")).one()
    assert ana.status == "scheduled" and ana.cycle == 8
    assert last + 9 * DAY < ana.due_at < ana.predicted_at < ana.window_end
    assert ana.window_start < ana.due_at  # early in the window: the 25th percentile

    report = run_purchase_cycles(store, now=ana.due_at + timedelta(hours=1))
    assert report.emitted >= 1
    again = run_purchase_cycles(store, now=ana.due_at + timedelta(hours=2))
    assert again.emitted == 0
    emitted = {cid: (eid, props) for eid, cid, props in due_events(store)}
    event_id, props = emitted["ana"]
    assert event_id == purchase_cycle_event_id("ana", "coffee", 8)
    assert props["category"] == "coffee" and props["cycle"] == 8
    assert set(props) >= {"predicted_at", "window_start", "window_end", "due_at", "confidence"}
    assert 0.99 < float(str(props["confidence"])) <= 1.0


def test_a_purchase_before_the_reminder_cancels_it(store: Engine) -> None:
    orders = [o for n in range(6) for o in every(14 + n * 0.3, 7, customer=f"c{n}")]
    orders += every(14, 8, customer="ana")
    add_orders(store, orders)
    last = START + 7 * 14 * DAY
    run_purchase_cycles(store, now=last + DAY)
    add_orders(store, [Order(last + 9 * DAY, "ana", "coffee", 10.0)], prefix="early-")
    report = run_purchase_cycles(store, now=last + 9 * DAY + timedelta(hours=1))
    assert report.cancelled == 1
    with store.connect() as connection:
        ana = connection.execute(select(cycles).where(cycles.c.customer_id == "ana")).one()
    assert ana.cycle == 9 and ana.cancelled == 1
    assert "ana" not in {cid for _, cid, _ in due_events(store)}


def test_random_buyers_are_left_alone(store: Engine) -> None:
    orders = []
    for n, gaps in enumerate([[1, 30, 4, 60, 12, 3, 45], [20, 2, 70, 9, 33, 5, 15]]):
        t = START
        for gap in gaps:
            t += gap * DAY
            orders.append(Order(t, f"r{n}", "coffee", 5.0))
    add_orders(store, orders)
    report = run_purchase_cycles(store, now=START + 400 * DAY)
    assert (report.regular, report.emitted) == (0, 0)
    assert report.series == 2


def test_daily_runs_fire_for_cyclic_buyers_and_rarely_for_random_ones(store: Engine) -> None:
    shop = generate_orders(seed=5, customers=300, share_cyclic=0.5, days=500, start=START)
    add_orders(store, shop.orders)
    first = START + 420 * DAY
    for day in range(0, 80, 2):
        run_purchase_cycles(store, now=first + day * DAY)
    reminded = {cid for _, cid, _ in due_events(store)}
    cyclic = {customer for customer, _ in shop.cyclic}
    everyone = {order.customer_id for order in shop.orders}
    random_buyers = everyone - cyclic
    assert len(reminded & cyclic) / len(cyclic) > 0.8
    assert len(reminded & random_buyers) / len(random_buyers) < 0.10
