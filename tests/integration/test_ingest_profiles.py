"""Profile batches applied set-based (profiles that merge nobody) must leave the store
exactly as the identity graph walked record by record does: the same customers,
identities and consents, the same counts, on SQLite and PostgreSQL, for batches that
mix independent profiles with merges, moved push tokens, shared addresses, consent
statements out of order, re-imports, and consent rows of customers that have no row."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Table, delete, insert, select

from omni_journey.identity import derive_customer_id, profile_batch
from omni_journey.ingest import profiles
from omni_journey.ingest.intake import BatchResult, ingest_events, ingest_profiles
from omni_journey.settings import Settings
from omni_journey.store.tables import metadata

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
_TABLES: list[Table] = [metadata.tables[name] for name in ("customers", "identities", "consents")]
_CLEARED = [*_TABLES, metadata.tables["events"]]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", default_region="DE")


def _profile(rng: random.Random, i: int) -> dict[str, Any]:
    """A profile over small pools, so ids, addresses and tokens collide often."""
    profile: dict[str, Any] = {}
    if rng.random() < 0.7:
        profile["customer_id"] = f"c-{rng.randrange(40)}"
    if rng.random() < 0.6:
        profile["email"] = f"Person{rng.randrange(50)}@Example.com"
    if rng.random() < 0.3:
        profile["phone"] = f"+49151{rng.randrange(30):08d}"
    if rng.random() < 0.15:
        profile["anonymous_id"] = f"anon-{rng.randrange(20)}"
    if not profile or rng.random() < 0.1:
        profile["external_id"] = f"x-{rng.randrange(30)}"
    if rng.random() < 0.2:
        profile["push_tokens"] = [f"tok-{rng.randrange(25)}"]
    if rng.random() < 0.5:
        channels = rng.sample(["email", "sms", "push", "whatsapp"], rng.randrange(1, 4))
        profile["consent"] = {c: rng.random() < 0.5 for c in channels}
        profile["at"] = (NOW - timedelta(hours=rng.randrange(48))).isoformat()
    if rng.random() < 0.5:
        profile["attributes"] = {"tier": rng.choice(["a", "b"]), "n": rng.randrange(3), "i": i}
    if rng.random() < 0.2:
        profile["timezone"] = rng.choice(["Europe/Berlin", "Europe/Paris"])
    if rng.random() < 0.05:
        profile["email"] = "not an address"  # rejected, nothing of it stored
    if rng.random() < 0.7:
        profile["merge"] = True  # else merging two known customers is refused (a conflict)
    return profile


def _batches(seed: int) -> list[list[dict[str, Any]]]:
    rng = random.Random(seed)
    return [[_profile(rng, b * 100 + i) for i in range(rng.randrange(1, 40))] for b in range(12)]


def _snapshot(store: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with store.connect() as connection:
        return {
            table.name: sorted(tuple(row) for row in connection.execute(select(table)))
            for table in _TABLES
        }


def _run(store: Engine, settings: Settings, batches: list[list[dict[str, Any]]]) -> Any:
    with store.begin() as connection:
        for table in _CLEARED:
            connection.execute(delete(table))
        # a consent row of a customer with no row yet (a link page writes those)
        row = {"customer_id": "c-7", "channel": "sms", "granted": True, "updated_at": NOW}
        connection.execute(insert(metadata.tables["consents"]), [row])
    event = {"id": "e-1", "name": "viewed", "at": "2026-05-01T10:00:00Z"}
    ingest_events(
        store,
        [event | {"identities": {"email": "person3@example.com"}}],
        now=NOW,
        settings=settings,
    )
    results: list[BatchResult] = []
    for number, batch in enumerate(batches):
        now = NOW + timedelta(minutes=number)
        results.append(ingest_profiles(store, batch, now=now, settings=settings))
        results.append(ingest_profiles(store, batch, now=now, settings=settings))  # again
    return results, _snapshot(store)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_set_based_profiles_store_what_the_identity_graph_stores(
    store: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    batches = _batches(seed)
    independent: list[int] = []
    split = profile_batch.split_independent

    def counted(*args: Any) -> Any:
        found = split(*args)
        independent.append(len(found[0]))
        return found

    monkeypatch.setattr(profiles, "split_independent", counted)
    set_based = _run(store, settings, batches)
    assert sum(independent) > 50  # both paths had work: collisions are frequent here

    monkeypatch.setattr(profiles, "split_independent", lambda found, _owners: ([], list(found)))
    walked = _run(store, settings, batches)
    assert set_based == walked


def test_an_independent_profile_and_a_merge_in_one_batch(store: Engine, settings: Settings) -> None:
    ingest_profiles(
        store,
        [{"customer_id": "c-a", "email": "a@example.com"}, {"customer_id": "c-b"}],
        now=NOW,
        settings=settings,
    )
    result = ingest_profiles(
        store,
        [
            {"customer_id": "c-n", "email": "n@example.com", "consent": {"email": True}},
            {"customer_id": "c-b", "email": "a@example.com", "merge": True},  # c-a into c-b
            {"customer_id": "c-b", "attributes": {"tier": "gold"}},  # after the merge
        ],
        now=NOW,
        settings=settings,
    )
    assert (result.accepted, result.duplicates, result.rejected) == (3, 0, [])
    rows = {row[0]: row for row in _snapshot(store)["customers"]}
    assert rows["c-a"][6] == "c-b"  # merged_into
    assert rows["c-n"][1] == "n@example.com"
    owners = {(r[0], r[1]): r[2] for r in _snapshot(store)["identities"]}
    assert owners[("email", "a@example.com")] == "c-b"
    assert owners[("email", "n@example.com")] == "c-n"


def test_a_merge_into_a_derived_id_and_the_profile_deriving_it_share_one_customer(
    store: Engine, settings: Settings
) -> None:
    """The second profile derives the id the first one names: they touch one customer,
    so neither is applied apart from the other."""
    derived = derive_customer_id(("email", "z@example.com"))
    ingest_profiles(
        store, [{"customer_id": "c-a", "email": "a@example.com"}], now=NOW, settings=settings
    )
    result = ingest_profiles(
        store,
        [{"customer_id": derived, "email": "a@example.com"}, {"email": "z@example.com"}],
        now=NOW,
        settings=settings,
    )
    assert (result.accepted, result.duplicates, result.rejected) == (2, 0, [])
    owners = {(r[0], r[1]): r[2] for r in _snapshot(store)["identities"]}
    assert owners[("email", "z@example.com")] == derived
    assert owners[("email", "a@example.com")] == derived
