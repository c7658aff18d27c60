"""Reach's Python path and its SQL path give the same verdict, on both databases.

Hypothesis builds small stores of customers whose addresses are present, absent or
empty, whose consent per channel is granted, revoked or missing, whose push tokens are
zero to three (one may be empty), with suppressions on their addresses or on others
(or on the right address for another channel), and with merges (chains, cycles and
merges into rows that do not exist). Through a real store, every customer's verdict on
every channel must be the same from:

* the Python rules on facts loaded by ``load_reach_by_id``;
* the SQL ``CASE`` (``eligibility_columns``), as the runner's bulk facts load it;
* the segment compiler's ``reachable`` (and ``not reachable``) and ``consent``;
* the runner's ``load_facts`` (``CustomerFacts.eligible``);
* the dispatcher's ``load_recipients`` for the survivor of every id (merged or not).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, insert, not_, select

from omni_journey.delivery.recipients import load_recipients
from omni_journey.reach import (
    eligibility_columns,
    eligibility_from_row,
    has_consent,
    load_reach_by_id,
)
from omni_journey.segments.compile import compile_condition
from omni_journey.segments.facts import load_facts
from omni_journey.spec.conditions import CHANNELS, ConsentCondition, ReachableCondition
from omni_journey.store.core import CONSENTS, CUSTOMERS, IDENTITIES, SUPPRESSIONS

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
EMAILS = [None, "", "a@example.com", "b@example.com"]
PHONES = [None, "", "+4915100000001", "+4915100000002"]
TOKENS = ["", "tok-1", "tok-2", "tok-3", "tok-4"]
ADDRESSES = [a for a in (*EMAILS, *PHONES, *TOKENS, "other@example.com") if a is not None]
MAX_CUSTOMERS = 7

customers = st.fixed_dictionaries(
    {
        "email": st.sampled_from(EMAILS),
        "phone": st.sampled_from(PHONES),
        "tokens": st.lists(st.sampled_from(TOKENS), max_size=3, unique=True),
        "consent": st.fixed_dictionaries(
            {channel: st.sampled_from([True, False, None]) for channel in CHANNELS}
        ),
        # an index into the shop: itself (a cycle), another, or past the end (dangling)
        "merged_into": st.one_of(
            st.none(), st.none(), st.integers(min_value=0, max_value=MAX_CUSTOMERS)
        ),
    }
)
shops = st.tuples(
    st.lists(customers, min_size=1, max_size=MAX_CUSTOMERS),
    st.sets(st.tuples(st.sampled_from(CHANNELS), st.sampled_from(ADDRESSES)), max_size=8),
)


def _cid(n: int) -> str:
    return f"c-{n}"


def _load(connection: Connection, shop: list[dict[str, Any]], blocked: set[Any]) -> None:
    claimed: set[str] = set()  # a token belongs to one customer: the first one keeps it
    for n, customer in enumerate(shop):
        target = customer["merged_into"]
        connection.execute(
            insert(CUSTOMERS),
            {"id": _cid(n), "email": customer["email"], "phone": customer["phone"],
             "attributes": {}, "merged_into": None if target is None else _cid(target),
             "created_at": NOW, "updated_at": NOW},
        )  # fmt: skip
        for age, token in enumerate(t for t in customer["tokens"] if t not in claimed):
            claimed.add(token)
            connection.execute(
                insert(IDENTITIES),
                {"kind": "push_token", "value": token, "customer_id": _cid(n),
                 "created_at": NOW - timedelta(minutes=age)},
            )  # fmt: skip
        for channel, granted in customer["consent"].items():
            if granted is not None:
                connection.execute(
                    insert(CONSENTS),
                    {"customer_id": _cid(n), "channel": channel, "granted": granted,
                     "source": "test", "updated_at": NOW},
                )  # fmt: skip
    for channel, address in sorted(blocked):
        connection.execute(
            insert(SUPPRESSIONS),
            {"channel": channel, "address": address, "reason": "test", "created_at": NOW},
        )


def _survivor(shop: list[dict[str, Any]], n: int) -> str | None:
    """Written out independently of identity.survivors: follow until a live row; a
    cycle or a missing row means no survivor."""
    seen: set[int] = set()
    while shop[n]["merged_into"] is not None:
        seen.add(n)
        n = shop[n]["merged_into"]
        if n in seen or n >= len(shop):
            return None
    return _cid(n)


def _members(connection: Connection, predicate: Any) -> set[str]:
    query = select(CUSTOMERS.c.id).where(predicate)
    return {str(cid) for cid in connection.execute(query).scalars()}


@pytest.fixture
def store_connection(store: Engine) -> Iterator[Connection]:
    with store.connect() as connection:
        yield connection


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(shop=shops)
def test_python_and_sql_reach_agree(
    store_connection: Connection, shop: tuple[list[dict[str, Any]], set[Any]]
) -> None:
    profiles, blocked = shop
    transaction = store_connection.begin()  # each example sees only its own shop
    try:
        _load(store_connection, profiles, blocked)
        _check(store_connection, profiles)
    finally:
        transaction.rollback()


def _check(connection: Connection, profiles: list[dict[str, Any]]) -> None:
    ids = [_cid(n) for n in range(len(profiles))]
    dialect = connection.dialect.name

    batch = load_reach_by_id(connection, ids)
    python = {cid: batch.eligible(cid) for cid in ids}
    rows = connection.execute(select(CUSTOMERS.c.id, *eligibility_columns()))
    sql = {str(row.id): eligibility_from_row(row) for row in rows}
    assert python == sql

    for channel in CHANNELS:
        reachable = ReachableCondition(reachable=channel)
        predicate = compile_condition(reachable, segments={}, now=NOW, dialect=dialect)
        expected = {cid for cid in ids if python[cid][channel] is None}
        assert _members(connection, predicate) == expected, channel
        assert _members(connection, not_(predicate)) == set(ids) - expected, channel
        consent = ConsentCondition(consent=channel)
        predicate = compile_condition(consent, segments={}, now=NOW, dialect=dialect)
        consenting = {cid for cid in ids if has_consent(batch.facts[cid].consent, channel)}
        assert _members(connection, predicate) == consenting, channel

    facts = load_facts(connection, ids, now=NOW, segments={})
    assert {cid: dict(facts.customer(cid).eligible) for cid in ids} == python

    recipients = load_recipients(connection, ids, now=NOW)
    for n, cid in enumerate(ids):
        survivor = _survivor(profiles, n)
        view = recipients.customers.get(cid)
        assert (view.id if view else None) == survivor, cid
        if view is not None and survivor is not None:
            for channel in CHANNELS:
                assert recipients.eligibility(view, channel) == sql[survivor][channel]
                to = recipients.address(view, channel)
                verdict = python[survivor][channel]
                if verdict is None:
                    assert to is not None and not recipients.is_suppressed(channel, to)
                elif verdict == "unreachable":
                    assert to is None
                elif verdict == "suppressed":
                    assert to is not None and recipients.is_suppressed(channel, to)
