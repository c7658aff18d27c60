"""A small, fully known history: a real journey run by the real runner, real dispatch
to the file outbox, and delivery feedback ingested as events.

30 customers add to cart at T0. The journey holds out 30% (deterministic by customer),
waits an hour, reminds (``channel: best``), waits a day for an order, then sends a last
chance by email. Customers whose index ends in 9 gave no consent; one treated customer
buys during the first hour (before any message); two treated customers and two in the
holdout buy after the reminder; one treated customer's address is suppressed.
:class:`History` says what each count must be, from the set-up alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from omni_journey.engine import holdout_bucket
from omni_journey.runner.passes import JourneyRunner
from omni_journey.service.pipeline import dispatch_due
from omni_journey.settings import Settings
from omni_journey.store.core import SUPPRESSIONS
from tests.integration.engine.conftest import T0, Shop, event, journey, profile

ROOT = Path(__file__).resolve().parents[3]
KEY = "cart_test"
HOLDOUT = 0.3
END = T0 + timedelta(days=5)

JOURNEY = journey(
    {
        "key": KEY,
        "name": "Cart test",
        "trigger": {"event": "product.added"},
        "exit_when": [{"event": "order.completed"}],
        "goal": {"event": "order.completed", "within": "3d"},
        "holdout": "30%",
        "steps": [
            {"id": "wait", "type": "delay", "for": "1h"},
            {"id": "remind", "type": "send", "message": "cart_reminder", "channel": "best"},
            {
                "id": "bought",
                "type": "wait_for",
                "event": "order.completed",
                "timeout": "1d",
                "on_timeout": "last",
            },
            {"id": "last", "type": "send", "message": "cart_last_chance", "channel": "email"},
        ],
    }
)


@dataclass
class History:
    """Who is who in the history, and the moments it was built at."""

    shop: Shop
    settings: Settings
    runner: JourneyRunner
    customers: list[str]
    holdout: list[str]
    treated: list[str]
    no_consent: list[str]
    early_buyer: str
    treated_buyers: list[str]
    holdout_buyers: list[str]
    suppressed: str
    opened: list[str]

    @property
    def engine(self) -> Engine:
        return self.shop.engine

    @property
    def reminded(self) -> list[str]:
        """Treated customers the reminder was queued for (reached it, with consent)."""
        return [c for c in self.treated if c != self.early_buyer and c not in self.no_consent]

    @property
    def last_chance(self) -> list[str]:
        """Treated customers the last chance was queued for."""
        return [c for c in self.reminded if c not in self.treated_buyers]


def settings_for(tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path / "home",
        project_dir=ROOT,
        unsubscribe_url="https://shop.example.com/unsubscribe",
        rate_limits="",
        send_concurrency=1,
    )


def build_history(engine: Engine, tmp_path: Path) -> History:
    settings = settings_for(tmp_path)
    shop = Shop(engine, settings)
    customers = [f"c-{i:02d}" for i in range(30)]
    holdout = [c for c in customers if holdout_bucket(KEY, c) < HOLDOUT]
    treated = [c for c in customers if c not in holdout]
    no_consent = [c for c in customers if c.endswith("9")]
    willing = [c for c in treated if c not in no_consent]
    assert len(holdout) >= 4 and len(willing) >= 7  # the scenario needs both groups
    early, suppressed, *rest = willing
    history = History(
        shop=shop,
        settings=settings,
        runner=JourneyRunner(engine, {KEY: JOURNEY}, {}),
        customers=customers,
        holdout=holdout,
        treated=treated,
        no_consent=no_consent,
        early_buyer=early,
        treated_buyers=rest[:2],
        holdout_buyers=holdout[:2],
        suppressed=suppressed,
        opened=rest[2:5],
    )
    nobody: dict[str, Any] = {"email": False, "sms": False, "push": False}
    shop.profiles(
        [profile(c, consent=nobody) if c in no_consent else profile(c) for c in customers]
    )
    shop.events([event(f"add-{c}", "product.added", c, T0, sku="SERUM-30") for c in customers])
    run = history.runner.run
    run(T0 + timedelta(minutes=1))
    _buy(shop, [early], T0 + timedelta(minutes=30))
    run(T0 + timedelta(minutes=31))
    run(T0 + timedelta(hours=1))
    with engine.begin() as connection:
        connection.execute(
            SUPPRESSIONS.insert(),
            {
                "channel": "email",
                "address": f"{suppressed}@example.com",
                "reason": "hard_bounce",
                "created_at": T0,
            },
        )
    dispatch_due(engine, settings, now=T0 + timedelta(hours=1))
    _buy(shop, history.treated_buyers + history.holdout_buyers, T0 + timedelta(hours=5))
    run(T0 + timedelta(hours=5))
    _feedback(history, T0 + timedelta(hours=6))
    run(T0 + timedelta(days=1, hours=1))
    dispatch_due(engine, settings, now=T0 + timedelta(days=1, hours=1))
    run(END - timedelta(minutes=1))
    return history


def _buy(shop: Shop, customers: list[str], at: Any) -> None:
    shop.events(
        [event(f"order-{c}", "order.completed", c, at, order_id=f"o-{c}") for c in customers],
        now=at,
    )


def _feedback(history: History, at: Any) -> None:
    """Delivered for every sent reminder, opened for three (one of them twice), an open
    of a message this outbox never held, and a tracked-link click with no message id."""
    sent = [m for m in history.shop.messages() if m.status == "sent"]
    by_customer = {m.customer_id: m.id for m in sent}
    events = [
        event(
            f"dlv-{m.id}", "message.delivered", m.customer_id, at, message_id=m.id, channel="email"
        )
        for m in sent
    ]
    for n, customer in enumerate([*history.opened, history.opened[0]]):
        events.append(
            event(
                f"open-{n}",
                "message.opened",
                customer,
                at,
                message_id=by_customer[customer],
                channel="email",
            )
        )
    events.append(
        event(
            "open-legacy",
            "message.opened",
            history.customers[0],
            at,
            message_id="legacy-1",
            channel="email",
        )
    )
    events.append(event("click-link", "message.clicked", history.opened[0], at, channel="email"))
    history.shop.events(events, now=at)


@pytest.fixture
def history(store: Engine, tmp_path: Path) -> History:
    return build_history(store, tmp_path)
