"""Features from history, computed by SQL on SQLite and PostgreSQL, match a hand count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine

from omni_journey.channels.features import CHANNELS, load_history
from omni_journey.ingest.intake import ingest_events, ingest_profiles
from omni_journey.settings import Settings

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)  # as_of; Berlin is UTC+2 (summer time)
EMAIL, SMS, PUSH = (CHANNELS.index(c) for c in ("email", "sms", "push"))


def _event(n: int, name: str, customer: str, at: datetime, **props: Any) -> dict[str, Any]:
    return {"id": f"e{n}", "name": name, "customer_id": customer, "at": at.isoformat(),
            "properties": props}  # fmt: skip


def _message(n: int, name: str, at: datetime, message_id: int, channel: str) -> dict[str, Any]:
    return _event(n, name, "a", at, message_id=message_id, channel=channel, message="m")


@pytest.fixture
def loaded(store: Engine, tmp_path: Any) -> Engine:
    settings = Settings(home=tmp_path)
    profiles = [
        {"customer_id": "a", "email": "a@example.com", "timezone": "Europe/Berlin",
         "push_tokens": ["fcm-a"], "consent": {"email": True, "push": True},
         "attributes": {"tier": "gold"}},
        {"customer_id": "b", "email": "b@example.com", "consent": {"email": True}},
    ]  # fmt: skip
    d, h = timedelta(days=1), timedelta(hours=1)
    events = [
        _message(1, "message.sent", T0 - 2 * d, 1, "email"),
        _message(2, "message.delivered", T0 - 2 * d + h / 60, 1, "email"),
        _message(3, "message.opened", T0 - 2 * d + h / 12, 1, "email"),
        _message(4, "message.clicked", T0 - 2 * d + h, 1, "email"),  # 11:00 UTC, 13:00 Berlin
        _message(5, "message.sent", T0 - 20 * d, 2, "email"),
        _message(6, "message.opened", T0 - 20 * d + h, 2, "email"),
        _message(7, "message.opened", T0 - 19 * d, 2, "email"),  # the same message again
        _message(8, "message.sent", T0 - 100 * d, 3, "sms"),
        _message(9, "message.bounced", T0 - 100 * d + h, 3, "sms"),
        _message(10, "message.sent", T0 - 3 * d, 4, "push"),
        _message(11, "message.opened", T0 - 3 * d + 10 * h, 4, "push"),  # 20:00 UTC, 22 Berlin
        _event(12, "product.viewed", "a", T0 - h, sku="X"),  # 09:00 UTC, 11:00 Berlin
        _event(13, "product.viewed", "a", T0 - 10 * d, sku="X"),  # 12:00 Berlin
        _event(14, "product.added", "a", T0 - 5 * d, sku="X"),  # 12:00 Berlin
        _event(15, "order.completed", "a", T0 - d, order_id="o1", total=30.5),  # 12:00 Berlin
        _event(16, "order.completed", "a", T0 - 200 * d, order_id="o0", total=10),
        _message(17, "message.clicked", T0 + h, 1, "email"),  # after as_of: never counted
        _event(18, "order.completed", "a", T0 + h, order_id="o2", total=99),
    ]
    ingest_profiles(store, profiles, now=T0 - 300 * d, settings=settings)
    result = ingest_events(store, events, now=T0, settings=settings)
    assert result.rejected == []
    return store


def test_counts_per_channel_and_window(loaded: Engine) -> None:
    with loaded.connect() as connection:
        history = load_history(connection, ["a", "b", "nobody"], T0)
    sent, opened = history.stat("sent", 30), history.stat("opened", 30)
    assert history.counts[0, EMAIL, 0].tolist() == [1, 2, 2]  # sent over 7, 30, 180 days
    assert opened[0, EMAIL] == 3
    assert history.stat("opened", 7)[0, EMAIL] == 1
    assert history.stat("engaged", 30)[0, EMAIL] == 2  # two messages, each once
    assert history.stat("clicked", 180)[0, EMAIL] == 1  # the click after as_of is not seen
    assert history.stat("delivered", 7)[0, EMAIL] == 1
    assert history.stat("sent", 180)[0, SMS] == 1
    assert history.stat("bounced", 180)[0, SMS] == 1
    assert history.stat("sent", 30)[0, SMS] == 0
    assert history.stat("engaged", 7)[0, PUSH] == 1
    # sends followed by an order within 72 hours: the email of two days ago and the push
    # of three days ago (not last-touch exclusive), not the email of 20 days ago
    assert history.stat("converted", 180)[0].tolist() == [1, 0, 1, 0]
    assert sent[1:].sum() == 0 and np.isnan(history.last_sent[1:]).all()


def test_recency_behaviour_and_profile(loaded: Engine) -> None:
    with loaded.connect() as connection:
        history = load_history(connection, ["a", "b", "nobody"], T0)
    assert history.last_engaged[0, EMAIL] == pytest.approx(2 - 1 / 24)
    assert history.last_sent[0, EMAIL] == pytest.approx(2.0)
    assert np.isnan(history.last_engaged[0, SMS])
    views, carts, orders = history.behaviour[0]
    assert views.tolist() == [1, 2, 2]
    assert carts.tolist() == [1, 1, 1]
    assert orders.tolist() == [1, 1, 1]  # the order of 200 days ago is outside 180 days
    assert history.last_order[0] == pytest.approx(1.0)
    assert history.revenue[0] == pytest.approx(30.5)
    assert np.isnan(history.last_order[1])
    assert history.has_push_token.tolist() == [True, False, False]
    assert history.timezones == ("Europe/Berlin", "UTC", "UTC")
    assert history.attributes[0] == {"tier": "gold"}
    assert history.local_hour[0] == 12.0  # 10:00 UTC in Berlin


def test_engagement_hours_are_local_and_leave_email_opens_out(loaded: Engine) -> None:
    with loaded.connect() as connection:
        history = load_history(connection, ["a"], T0)
    hours = {h: int(c) for h, c in enumerate(history.hours[0]) if c}
    # Berlin: the view at 11, the view, the cart and the order at 12, the click at 13, the
    # push open at 22; email opens (machine opens, many of them) do not count
    assert hours == {11: 1, 12: 3, 13: 1, 22: 1}


def test_a_later_as_of_sees_the_later_events(loaded: Engine) -> None:
    with loaded.connect() as connection:
        later = load_history(connection, ["a"], T0 + timedelta(hours=2))
    assert later.stat("clicked", 7)[0, EMAIL] == 2
    assert later.behaviour[0, 2, 0] == 2
