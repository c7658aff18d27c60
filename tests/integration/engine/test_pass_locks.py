"""Passes side by side on PostgreSQL: one pass per journey at a time, and a cap across
journeys that holds while two journeys decide for the same customers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select, text

from omni_journey.runner import locks, writes
from omni_journey.runner.passes import JourneyRunner
from omni_journey.spec.models import FrequencyCap
from omni_journey.store.core import JOURNEY_CURSORS, MESSAGES
from tests.integration.engine.conftest import T0, Shop, event, journey, profile

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("store", ["postgresql"], indirect=True),
]

PING = journey(
    {
        "key": "ping",
        "trigger": {"event": "ping"},
        "entry": {"re_entry": "never"},
        "steps": [{"id": "hello", "type": "send", "message": "welcome", "channel": "email"}],
    }
)


ONE_A_DAY = FrequencyCap.model_validate({"max": 1, "per": "1d"})


class Background:
    """``target`` in a thread; what it raised is raised again by :meth:`join`."""

    def __init__(self, target: Callable[[], Any]) -> None:
        self.errors: list[BaseException] = []

        def run() -> None:
            try:
                target()
            except BaseException as error:  # pragma: no cover - raised again in join
                self.errors.append(error)

        self.thread = threading.Thread(target=run)
        self.thread.start()

    def join(self) -> None:
        self.thread.join(timeout=60)
        assert not self.thread.is_alive()
        if self.errors:
            raise self.errors[0]


def _waiting_for_a_lock(engine: Engine, kind: str, seconds: float = 20) -> None:
    """Return once another session waits for a lock of ``kind`` (``advisory``, ``tuple``
    or ``transactionid``); fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    with engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.execute(
                text("SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = :kind"),
                {"kind": kind},
            ).scalar_one()
            connection.rollback()
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError(f"nobody waited for a {kind} lock")


@pytest.fixture
def held(store: Engine) -> Iterator[Connection]:
    """A connection of the test's own, outside any transaction."""
    with store.connect() as connection:
        yield connection


def _holds(engine: Engine, key: str) -> bool:
    """Whether some session holds journey ``key`` (tried from a fresh session)."""
    with engine.connect() as connection:
        taken = connection.execute(
            text("SELECT pg_try_advisory_xact_lock(:c, hashtext(:k))"),
            {"c": locks.JOURNEY_LOCK_CLASS, "k": key},
        ).scalar_one()
        connection.rollback()
    return not taken


def test_a_journey_is_held_for_the_block_and_released_after_it(
    store: Engine, held: Connection
) -> None:
    with locks.journey_held(held, "ping"):
        assert _holds(store, "ping")
        assert not _holds(store, "pong")  # other journeys go on
        with held.begin():  # the block runs its own transactions
            held.execute(text("SELECT 1"))
        assert _holds(store, "ping")  # held across them
    assert not _holds(store, "ping")
    with pytest.raises(RuntimeError), locks.journey_held(held, "ping"):
        raise RuntimeError("a batch failed")
    assert not _holds(store, "ping")  # released on failure: the connection goes back to a pool


class PausedRunner(JourneyRunner):
    """A runner that, holding a journey, waits for ``go`` before working on it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.holding, self.go = threading.Event(), threading.Event()

    def _journey_pass(self, *args: Any) -> None:
        self.holding.set()
        assert self.go.wait(timeout=30)
        super()._journey_pass(*args)


def test_a_second_pass_of_a_journey_waits_for_the_first_and_finds_the_work_done(
    shop: Shop,
) -> None:
    shop.profiles([profile(f"c-{i}") for i in range(20)])
    shop.events([event(f"p-{i}", "ping", f"c-{i}", T0) for i in range(20)])
    now = T0 + timedelta(minutes=1)
    first = PausedRunner(shop.engine, {"ping": PING}, {}, batch_size=5)
    first_pass = Background(lambda: first.run(now))
    assert first.holding.wait(timeout=30)
    second_pass = Background(
        lambda: JourneyRunner(shop.engine, {"ping": PING}, {}, batch_size=5).run(now)
    )
    _waiting_for_a_lock(shop.engine, "advisory")
    with shop.engine.connect() as connection:  # the second has not read an event
        assert connection.execute(select(JOURNEY_CURSORS)).all() == []
    first.go.set()
    first_pass.join()
    second_pass.join()
    assert len(shop.messages()) == 20
    assert len(shop.log("entered")) == 20
    assert shop.log("skipped") == []  # the second pass refused nobody: it saw no new event


def test_a_batch_that_finds_no_cursor_waits_for_the_one_creating_it(
    store: Engine, held: Connection
) -> None:
    with held.begin():  # the first batch of a pass: creates the row, reads up to seq 40
        assert writes.event_cursor(held, "ping", T0) == 0
        found: list[int] = []

        def second_batch() -> None:
            with store.begin() as connection:
                found.append(writes.event_cursor(connection, "ping", T0))

        second = Background(second_batch)
        _waiting_for_a_lock(store, "transactionid")
        writes.advance_cursor(held, "ping", 40, T0)
    second.join()
    assert found == [40]  # not 0: those 40 events are not read again


def test_the_cap_across_journeys_counts_what_another_journey_is_queueing(
    shop: Shop, held: Connection
) -> None:
    shop.profiles([profile("c-1"), profile("c-2")])
    shop.events([event(f"p-{c}", "ping", c, T0) for c in ("c-1", "c-2")])
    runner = JourneyRunner(shop.engine, {"ping": PING}, {}, global_cap=ONE_A_DAY)
    with held.begin():  # another journey's batch: c-1 locked, a message queued, not committed
        locks.hold_customers(held, ["c-1"])
        held.execute(
            MESSAGES.insert().values(
                idempotency_key="other:1",
                customer_id="c-1",
                journey_key="other",
                step_id="hi",
                channel="email",
                message_key="welcome",
                status="pending",
                send_after=T0,
                created_at=T0,
                decision={},
                render_context={},
            )
        )
        passing = Background(lambda: runner.run(T0 + timedelta(minutes=1)))
        _waiting_for_a_lock(shop.engine, "transactionid")  # the pass waits for c-1
    passing.join()
    sent = sorted((m.customer_id, m.journey_key) for m in shop.messages())
    assert sent == [("c-1", "other"), ("c-2", "ping")]
    (capped,) = shop.log("skipped")
    assert (capped.customer_id, capped.reason) == ("c-1", "frequency_cap")
    assert capped.detail["cap"] == {"scope": "global", "max": 1, "per": "1d", "sent": 1}


def test_customers_are_locked_only_under_a_cap_across_journeys(
    shop: Shop, held: Connection
) -> None:
    shop.profiles([profile("c-1")])
    shop.events([event("p-c-1", "ping", "c-1", T0)])
    with held.begin():  # no cap: the pass never waits for c-1
        locks.hold_customers(held, ["c-1"])
        Background(lambda: JourneyRunner(shop.engine, {"ping": PING}, {}).run(T0)).join()
    assert [m.customer_id for m in shop.messages()] == ["c-1"]
