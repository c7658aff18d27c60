"""The ``advance`` and ``dispatch`` flows run as shards of the customers on PostgreSQL,
against the session's real Prefect server: two runs of each (``shard: "1/2"`` and
``"2/2"``) enter, queue and send every customer exactly once between them, each only
its own shard's; and, with the rate limits shared in the store, the runs need no turn
at the one-sender slot."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from omni_journey.store.core import ENROLLMENTS, MESSAGES
from omni_journey.store.shards import Shard
from tests.conftest import _fresh_postgres_database
from tests.integration.prefect.conftest import NUDGE, T0, PrefectApi, Shop

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

HALVES = Shard(1, 2).all()


@pytest.fixture
def pg_shop(prefect_api: PrefectApi, make_shop: Callable[..., Shop], postgres_url: str) -> Shop:
    return make_shop(
        {"quick_nudge": NUDGE},
        database_url=_fresh_postgres_database(postgres_url),
        secret_key=secrets.token_urlsafe(32),
    )


def _rows(shop: Shop) -> tuple[list[str], dict[str, str]]:
    with shop.engine.connect() as connection:
        entered = list(connection.execute(select(ENROLLMENTS.c.customer_id)).scalars())
        messages = dict(connection.execute(select(MESSAGES.c.customer_id, MESSAGES.c.status)).all())
    return entered, messages


def test_two_shards_of_advance_enter_and_send_everyone_once(pg_shop: Shop) -> None:
    from flows.advance import advance

    customers = pg_shop.profiles(30)
    pg_shop.events("product.viewed", customers)
    at = T0 + timedelta(minutes=1)

    counts = [advance(journey="quick_nudge", now=at, send=True, shard=str(s)) for s in HALVES]

    entered, messages = _rows(pg_shop)
    assert sorted(entered) == sorted(customers)  # once each, between the two runs
    assert [c["quick_nudge"]["entered"] for c in counts] == [
        sum(1 for c in customers if s.holds(c)) for s in HALVES
    ]
    assert all(n > 0 for n in (c["quick_nudge"]["entered"] for c in counts))
    assert messages == dict.fromkeys(customers, "sent")
    assert len(pg_shop.outbox_files()) == len(customers)


def test_two_shards_of_dispatch_send_only_their_own_customers(pg_shop: Shop) -> None:
    from flows.advance import advance
    from flows.dispatch import dispatch_outbox

    customers = pg_shop.profiles(30)
    pg_shop.events("product.viewed", customers)
    at = T0 + timedelta(minutes=1)
    advance(journey="quick_nudge", now=at, send=False)
    first, second = HALVES

    report = dispatch_outbox(now=at, shard=str(first))

    _, messages = _rows(pg_shop)
    sent = sorted(c for c, status in messages.items() if status == "sent")
    assert sent == sorted(c for c in customers if first.holds(c))
    assert report["sent"] == len(sent) > 0
    dispatch_outbox(now=at, shard=str(second))
    _, messages = _rows(pg_shop)
    assert messages == dict.fromkeys(customers, "sent")
    assert len(pg_shop.outbox_files()) == len(customers)
