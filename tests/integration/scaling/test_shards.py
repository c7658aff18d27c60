"""Shards in one process: the shard key in Python and SQL, a pass split between shards,
and a change of the shard count that neither loses nor doubles an event."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from omni_journey.errors import ConfigError
from omni_journey.runner.passes import JourneyRunner
from omni_journey.settings import Settings
from omni_journey.store import open_store
from omni_journey.store.core import ENROLLMENTS, JOURNEY_LOG
from omni_journey.store.shards import ALL, Shard, ShardError, key_sql, shard_key
from tests.integration.engine.conftest import T0, event, journey, profile
from tests.integration.engine.conftest import Shop as Store

IDS = [f"c-{i}" for i in range(300)] + ["", "ünïcødé", "a" * 128, "c'quote"]

# every event enters (re-entry always), and the customer is sent one message at once:
# an event read twice enters twice, an event lost enters nobody
PING = journey(
    {
        "key": "ping",
        "trigger": {"event": "ping"},
        "entry": {"re_entry": "always"},
        "steps": [{"id": "hello", "type": "send", "message": "welcome", "channel": "email"}],
    }
)
# a wait, so a second pass has wake-ups to advance
LATER = journey(
    {
        "key": "later",
        "trigger": {"event": "ping"},
        "entry": {"re_entry": "never"},
        "steps": [
            {"id": "wait", "type": "delay", "for": "1h"},
            {"id": "hello", "type": "send", "message": "welcome", "channel": "email"},
        ],
    }
)


def test_a_shard_is_a_range_of_an_md5_key_and_the_shards_of_n_cover_everyone_once() -> None:
    assert shard_key("c-42") == 2642484532  # md5("c-42") starts 9d81a434
    assert Shard.parse(" 2 / 4 ") == Shard(2, 4) and str(Shard(2, 4)) == "2/4"
    for bad in ("0/4", "5/4", "1/0", "two", "1/"):
        with pytest.raises(ShardError):
            Shard.parse(bad)
    for count in range(1, 7):
        owners = Counter(next(s for s in Shard(1, count).all() if s.holds(c)).index for c in IDS)
        assert sum(owners.values()) == len(IDS)
        assert all(sum(s.holds(c) for s in Shard(1, count).all()) == 1 for c in IDS)
        if count > 1:  # spread: no shard empty, none with most of them
            assert len(owners) == count and max(owners.values()) < len(IDS) * 2 / count


def test_the_store_computes_the_shard_key_as_python_does(store: Engine) -> None:
    dialect = store.dialect.name
    with store.connect() as connection:
        for customer in IDS:
            found = connection.execute(
                text(f"SELECT {key_sql(':c', dialect)}"), {"c": customer}
            ).scalar_one()
            assert found == shard_key(customer), customer
            for shard in Shard(1, 3).all():
                inside = connection.execute(
                    text(f"SELECT CASE WHEN {shard.sql(':c', dialect)} THEN 1 ELSE 0 END"),
                    {"c": customer},
                ).scalar_one()
                assert bool(inside) == shard.holds(customer)


def test_sqlite_runs_journeys_as_one_shard(sqlite_store: Engine) -> None:
    JourneyRunner(sqlite_store, {"ping": PING}, {}, shard=ALL)
    with pytest.raises(ConfigError, match="shards need PostgreSQL"):
        JourneyRunner(sqlite_store, {"ping": PING}, {}, shard=Shard(1, 2))


@pytest.fixture
def fresh(postgres_url: str, tmp_path: Path) -> Iterator[Callable[[str], Store]]:
    """Make empty PostgreSQL stores (disposed after the test)."""
    from tests.conftest import _fresh_postgres_database

    made: list[Store] = []

    def make(name: str) -> Store:
        engine = open_store(_fresh_postgres_database(postgres_url))
        made.append(Store(engine, Settings(home=tmp_path / name)))
        return made[-1]

    yield make
    for store in made:
        store.engine.dispose()


def _entered(store: Store) -> Counter[tuple[Any, ...]]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(
                JOURNEY_LOG.c.journey_key, JOURNEY_LOG.c.customer_id, JOURNEY_LOG.c.event_id
            ).where(JOURNEY_LOG.c.kind.in_(["entered", "sent"]))
        )
        return Counter(tuple(row) for row in rows)


def _state(store: Store, key: str) -> list[tuple[str, str]]:
    """(customer, step) of the journey's enrollments that advanced past entry."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(ENROLLMENTS.c.customer_id, ENROLLMENTS.c.step_id).where(
                ENROLLMENTS.c.journey_key == key
            )
        )
        return [(row.customer_id, row.step_id) for row in rows]


@pytest.mark.postgres
def test_each_shard_advances_its_own_customers_and_together_all_of_them(
    fresh: Callable[[str], Store],
) -> None:
    customers = [f"c-{i}" for i in range(40)]
    journeys = {"ping": PING, "later": LATER}
    stores = [fresh(name) for name in ("one", "two")]
    for store in stores:
        store.profiles([profile(c) for c in customers])
        store.events([event(f"p-{c}", "ping", c, T0) for c in customers])
    one, two = stores
    first, second = Shard(1, 2), Shard(2, 2)
    mine = [c for c in customers if first.holds(c)]
    assert 0 < len(mine) < len(customers)
    # the first pass enters everyone (waiting), the second ends everyone's wait
    for now, before, after in (
        (T0 + timedelta(minutes=1), None, "wait"),
        (T0 + timedelta(hours=2), "wait", "hello"),
    ):
        JourneyRunner(one.engine, journeys, {}).run(now)
        JourneyRunner(two.engine, journeys, {}, shard=first).run(now)
        # only the first shard's customers moved
        expected = {c: after if c in mine else before for c in customers}
        assert dict(_state(two, "later")) == {c: s for c, s in expected.items() if s}
        JourneyRunner(two.engine, journeys, {}, shard=second).run(now)
    later = _state(two, "later")
    assert len(later) == len(customers) and {step for _, step in later} == {"hello"}
    assert _entered(two) == _entered(one)
    assert len(two.messages()) == len(one.messages()) == 2 * len(customers)


@pytest.mark.postgres
def test_changing_the_shard_count_neither_loses_nor_doubles_an_event(
    fresh: Callable[[str], Store],
) -> None:
    """Waves of events, each followed by a pass whose workers run as another number of
    shards, some of them only part of the shards (the others have not run yet when the
    count changes): every event enters its customer exactly once."""
    customers = [f"c-{i}" for i in range(30)]
    reference, sharded = fresh("reference"), fresh("sharded")
    waves: list[list[Shard]] = [
        [ALL],
        [Shard(1, 3)],  # 1 -> 3 shards; shards 2 and 3 of 3 never run as such
        [Shard(2, 2), Shard(1, 2)],  # 3 -> 2: the handover finishes all three
        [Shard(3, 4)],  # 2 -> 4
        [ALL],  # 4 -> 1
        [Shard(2, 2), Shard(1, 2)],
    ]
    for store in (reference, sharded):
        store.profiles([profile(c) for c in customers])
    for number, workers in enumerate(waves):
        at = T0 + timedelta(hours=number)
        batch = [event(f"w{number}-{c}", "ping", c, at) for c in customers[number::2]]
        for store in (reference, sharded):
            store.events(batch, now=at)
        JourneyRunner(reference.engine, {"ping": PING}, {}, batch_size=7).run(at)
        for shard in workers:
            JourneyRunner(sharded.engine, {"ping": PING}, {}, batch_size=7, shard=shard).run(at)
    last = T0 + timedelta(hours=len(waves))
    JourneyRunner(sharded.engine, {"ping": PING}, {}, shard=ALL).run(last)  # the rest
    found, expected = _entered(sharded), _entered(reference)
    assert found == expected
    entries = Counter(key for key in found.elements() if key[2] is not None)
    assert len(entries) == sum(len(customers[n::2]) for n in range(len(waves)))
    assert set(entries.values()) == {1}  # each event entered its customer once
