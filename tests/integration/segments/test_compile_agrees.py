"""The SQL compiler and the in-memory ``BatchFacts`` give the same members, on both
databases, for hundreds of random conditions over a seeded shop."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import Engine

from omni_journey.segments.compile import select_members
from omni_journey.segments.facts import load_facts
from omni_journey.spec.models import SegmentSpec
from tests.integration.segments.shop import (
    NOW,
    base_segments,
    build_shop,
    load_shop,
    random_condition,
)

CONDITIONS = 300


def test_sql_agrees_with_batch_facts(store: Engine) -> None:
    shop = build_shop(seed=7, size=80)
    load_shop(store, shop)
    segments = base_segments()
    rng = random.Random(11)
    ids = shop.live_ids
    checked = non_trivial = 0
    with store.connect() as connection:
        facts = load_facts(
            connection, ids, now=NOW, segments=segments, history=timedelta(days=5000)
        )
        for n in range(CONDITIONS):
            match = random_condition(rng)
            spec = SegmentSpec.model_validate({"key": f"random_{n}", "match": match})
            expected = [cid for cid in ids if facts.holds(spec.match, cid)]
            got = select_members(connection, spec, segments, now=NOW)
            assert got == expected, f"condition {match}"
            checked += 1
            non_trivial += 0 < len(expected) < len(ids)
    assert checked == CONDITIONS
    # the generator must produce conditions that split the shop, not only all/none
    assert non_trivial > CONDITIONS // 2
