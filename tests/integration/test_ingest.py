"""Ingestion and identity resolution against real SQLite and PostgreSQL stores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Table, func, insert, select

import omni_journey
from omni_journey import api
from omni_journey.errors import IngestError
from omni_journey.identity import derive_customer_id
from omni_journey.ingest import files, import_chunks
from omni_journey.ingest.intake import (
    ImportFileError,
    Reject,
    import_file,
    ingest_events,
    ingest_profiles,
)
from omni_journey.settings import Settings
from omni_journey.store.tables import metadata

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
customers: Table = metadata.tables["customers"]
identities: Table = metadata.tables["identities"]
events: Table = metadata.tables["events"]
consents: Table = metadata.tables["consents"]
enrollments: Table = metadata.tables["enrollments"]
messages: Table = metadata.tables["messages"]
journey_versions: Table = metadata.tables["journey_versions"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", default_region="DE")


def _event(event_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": event_id, "name": "product.viewed", "at": "2026-05-01T10:00:00Z", **fields}


def _rows(store: Engine, table: Table, *where: Any) -> list[Any]:
    with store.connect() as connection:
        return list(connection.execute(select(table).where(*where)))


def _count(store: Engine, table: Table) -> int:
    with store.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def _customer_of(store: Engine, event_id: str) -> str:
    (row,) = _rows(store, events, events.c.event_id == event_id)
    return str(row.customer_id)


def _identities_of(store: Engine, customer_id: str) -> set[tuple[str, str]]:
    rows = _rows(store, identities, identities.c.customer_id == customer_id)
    return {(r.kind, r.value) for r in rows}


def _customer(store: Engine, customer_id: str) -> Any:
    (row,) = _rows(store, customers, customers.c.id == customer_id)
    return row


# --- events ---------------------------------------------------------------------------


def test_events_are_stored_with_aware_utc_timestamps_and_properties(
    store: Engine, settings: Settings
) -> None:
    berlin = timezone(timedelta(hours=2))
    records = [
        _event(
            "e-1", customer_id="c-1", at="2026-05-01T12:30:15.123456+02:00", properties={"p": 1}
        ),
        _event("e-2", customer_id="c-1", at="2026-05-01T10:00:00Z", properties={"n": {"a": [1]}}),
    ]
    result = ingest_events(store, records, now=NOW, settings=settings)
    assert (result.accepted, result.duplicates, result.rejected) == (2, 0, [])
    rows = {r.event_id: r for r in _rows(store, events)}
    assert rows["e-1"].at == datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=berlin)
    assert rows["e-1"].at.utcoffset() == timedelta(0)
    assert rows["e-2"].at == datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    assert rows["e-1"].received_at == NOW
    assert rows["e-2"].properties == {"n": {"a": [1]}}
    assert rows["e-1"].seq < rows["e-2"].seq
    assert _customer(store, "c-1").created_at == NOW
    assert _identities_of(store, "c-1") == {("customer_id", "c-1")}


def test_bulk_path_writes_exactly_what_the_column_types_would(sqlite_store: Engine) -> None:
    """The fast path bypasses UTCDateTime and JSON on SQLite: the stored text must be
    the same as SQLAlchemy's own, so both read back and compare alike."""
    settings = Settings(home=Path("unused"))
    at = datetime(2026, 5, 1, 10, 0, 0, 5, tzinfo=timezone(timedelta(hours=-7)))
    ingest_events(
        sqlite_store,
        [_event("fast", customer_id="c", at=at.isoformat())],
        now=NOW,
        settings=settings,
    )
    with sqlite_store.begin() as connection:
        row = {"name": "x", "customer_id": "c", "at": at, "received_at": NOW, "properties": {}}
        connection.execute(insert(events), [{**row, "event_id": "core"}])
        raw = connection.exec_driver_sql(
            "SELECT event_id, at, received_at FROM events ORDER BY event_id"
        ).all()
    assert raw[0][1:] == raw[1][1:]
    assert raw[0][1] == "2026-05-01 17:00:00.000005"


def test_reimport_is_idempotent(store: Engine, settings: Settings) -> None:
    batch = [
        _event("e-1", customer_id="c-1"),
        _event("e-2", identities={"email": "ana@example.com"}),
        _event("e-2", identities={"email": "ana@example.com"}),  # twice in one batch
    ]
    first = ingest_events(store, batch, now=NOW, settings=settings)
    assert (first.accepted, first.duplicates) == (2, 1)
    before = [_count(store, t) for t in (events, customers, identities)]
    second = ingest_events(store, batch, now=NOW + timedelta(hours=1), settings=settings)
    assert (second.accepted, second.duplicates, second.rejected) == (0, 3, [])
    assert [_count(store, t) for t in (events, customers, identities)] == before


@pytest.mark.parametrize(
    ("kind", "given", "stored"),
    [
        ("email", "Ana.Maria@Example.COM", "Ana.Maria@example.com"),
        ("phone", "0151 1234 5678", "+4915112345678"),
        ("push_token", "fcm-token-1", "fcm-token-1"),
        ("external_id", "crm-77", "crm-77"),
        ("anonymous_id", "anon-1", "anon-1"),
    ],
)
def test_an_event_without_customer_id_resolves_by_each_identity_kind(
    store: Engine, settings: Settings, kind: str, given: str, stored: str
) -> None:
    ingest_events(
        store,
        [_event("e-1", customer_id="c-42", identities={kind: stored})],
        now=NOW,
        settings=settings,
    )
    assert _identities_of(store, "c-42") == {("customer_id", "c-42"), (kind, stored)}
    result = ingest_events(
        store, [_event("e-2", identities={kind: given})], now=NOW, settings=settings
    )
    assert result.accepted == 1
    assert _customer_of(store, "e-2") == "c-42"


def test_an_unknown_identity_creates_one_deterministic_customer(
    store: Engine, settings: Settings
) -> None:
    ingest_events(
        store,
        [
            _event("e-1", identities={"email": "new@example.com"}),
            _event("e-2", identities={"email": "new@example.com", "phone": "+4915112345678"}),
        ],
        now=NOW,
        settings=settings,
    )
    ingest_events(
        store, [_event("e-3", identities={"phone": "+4915112345678"})], now=NOW, settings=settings
    )
    expected = derive_customer_id(("email", "new@example.com"))
    assert {_customer_of(store, e) for e in ("e-1", "e-2", "e-3")} == {expected}
    row = _customer(store, expected)
    assert (row.email, row.phone) == ("new@example.com", "+4915112345678")
    assert _count(store, customers) == 1


def test_an_event_never_steals_an_identity_from_another_customer(
    store: Engine, settings: Settings
) -> None:
    ingest_profiles(
        store, [{"customer_id": "c-1", "email": "ana@example.com"}], now=NOW, settings=settings
    )
    result = ingest_events(
        store,
        [
            _event(
                "e-1",
                customer_id="c-2",
                identities={"email": "ana@example.com", "phone": "+4915112345678"},
            )
        ],
        now=NOW,
        settings=settings,
    )
    assert (result.accepted, result.identity_conflicts) == (1, 1)
    assert _customer_of(store, "e-1") == "c-2"
    assert ("email", "ana@example.com") in _identities_of(store, "c-1")
    assert _identities_of(store, "c-2") == {("customer_id", "c-2"), ("phone", "+4915112345678")}
    assert _customer(store, "c-2").email is None
    assert _customer(store, "c-2").phone == "+4915112345678"
    assert _customer(store, "c-1").merged_into is None


def test_an_event_fills_an_empty_contact_column_but_never_overwrites_it(
    store: Engine, settings: Settings
) -> None:
    ingest_profiles(
        store, [{"customer_id": "c-1", "email": "a@example.com"}], now=NOW, settings=settings
    )
    ingest_events(store, [_event("e-0", customer_id="c-2")], now=NOW, settings=settings)
    ingest_events(
        store,
        [
            _event("e-1", customer_id="c-1", identities={"email": "b@example.com"}),
            _event("e-2", customer_id="c-2", identities={"email": "c@example.com"}),
        ],
        now=NOW,
        settings=settings,
    )
    assert _customer(store, "c-1").email == "a@example.com"
    assert _customer(store, "c-2").email == "c@example.com"


@pytest.mark.parametrize(
    ("identities_", "reason"),
    [
        ({"email": "not-an-address"}, "invalid-email"),
        ({"email": "ana@localhost"}, "invalid-email"),
        ({"phone": "12"}, "invalid-phone"),
        ({"phone": "+49 no"}, "invalid-phone"),
        ({"push_token": "x" * 600}, "invalid-field"),
        ({"fax": "123"}, "invalid-field"),
    ],
)
def test_a_bad_identity_rejects_that_event_only_and_stores_nothing_of_it(
    store: Engine, settings: Settings, identities_: dict[str, str], reason: str
) -> None:
    result = ingest_events(
        store,
        [
            _event("good-1", customer_id="c-1"),
            _event("bad", customer_id="c-bad", identities=identities_),
            _event("good-2", customer_id="c-1"),
        ],
        now=NOW,
        settings=settings,
    )
    assert (result.accepted, result.duplicates) == (2, 0)
    assert [(r.index, r.reason) for r in result.rejected] == [(1, reason)]
    for value in identities_.values():
        assert value not in result.rejected[0].detail
    assert _rows(store, customers, customers.c.id == "c-bad") == []
    assert _rows(store, events, events.c.event_id == "bad") == []
    assert _identities_of(store, "c-1") == {("customer_id", "c-1")}


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"name": "x", "at": "2026-05-01T10:00:00Z", "customer_id": "c"}, "missing-field"),
        (_event("e", customer_id="c", at="2026-05-01T10:00:00"), "invalid-timestamp"),
        (_event("e", customer_id="c", at="yesterday"), "invalid-timestamp"),
        (_event("e", customer_id="c", at=1714557600), "invalid-timestamp"),
        (_event("e"), "missing-field"),
        (_event("e", customer_id="c", properties=[1, 2]), "invalid-field"),
        (_event("e", customer_id="c", properties={"s": "nul\x00"}), "invalid-field"),
        (_event("e", customer_id="c" * 129), "invalid-field"),
        (_event("e", customer_id="c", name=""), "missing-field"),
        (["not", "an", "object"], "invalid-field"),
    ],
)
def test_malformed_events_are_rejected_with_a_reason(
    store: Engine, settings: Settings, record: Any, reason: str
) -> None:
    result = ingest_events(store, [record], now=NOW, settings=settings)
    assert result == type(result)(0, 0, [Reject(0, reason, result.rejected[0].detail)])
    assert _count(store, events) == 0


# --- profiles and merges ---------------------------------------------------------------


def test_a_profile_sets_contact_consent_attributes_and_push_tokens(
    store: Engine, settings: Settings
) -> None:
    profile = {
        "customer_id": "c-42",
        "email": "ana@example.com",
        "phone": "+4915112345678",
        "push_tokens": ["fcm-token-1", "fcm-token-2"],
        "timezone": "Europe/Berlin",
        "locale": "de",
        "consent": {"email": True, "sms": False, "push": True},
        "attributes": {"first_name": "Ana", "tier": "gold"},
    }
    result = ingest_profiles(store, [profile], now=NOW, settings=settings)
    assert (result.accepted, result.duplicates, result.rejected) == (1, 0, [])
    row = _customer(store, "c-42")
    assert (row.email, row.phone, row.timezone, row.locale) == (
        "ana@example.com",
        "+4915112345678",
        "Europe/Berlin",
        "de",
    )
    assert row.attributes == {"first_name": "Ana", "tier": "gold"}
    assert _identities_of(store, "c-42") == {
        ("customer_id", "c-42"),
        ("email", "ana@example.com"),
        ("phone", "+4915112345678"),
        ("push_token", "fcm-token-1"),
        ("push_token", "fcm-token-2"),
    }
    granted = {r.channel: (r.granted, r.updated_at) for r in _rows(store, consents)}
    assert granted == {"email": (True, NOW), "sms": (False, NOW), "push": (True, NOW)}
    again = ingest_profiles(store, [profile], now=NOW + timedelta(days=1), settings=settings)
    assert (again.accepted, again.duplicates) == (0, 1)


def test_consent_latest_statement_wins(store: Engine, settings: Settings) -> None:
    later, earlier = "2026-05-03T00:00:00Z", "2026-05-02T00:00:00Z"
    ingest_profiles(
        store,
        [{"customer_id": "c", "consent": {"sms": False}, "at": later}],
        now=NOW,
        settings=settings,
    )
    stale = ingest_profiles(
        store,
        [{"customer_id": "c", "consent": {"sms": True}, "at": earlier}],
        now=NOW,
        settings=settings,
    )
    assert (stale.accepted, stale.duplicates) == (0, 1)
    ((row),) = _rows(store, consents)
    assert (row.granted, row.updated_at) == (False, datetime(2026, 5, 3, tzinfo=UTC))


def _journey_version(store: Engine) -> int:
    with store.begin() as connection:
        return int(
            connection.execute(
                insert(journey_versions).returning(journey_versions.c.id),
                {
                    "journey_key": "j",
                    "version": 1,
                    "spec_hash": "h",
                    "spec": {},
                    "published_at": NOW,
                },
            ).scalar_one()
        )


def _enroll(store: Engine, version: int, customer_id: str, journey: str, entered: datetime) -> None:
    with store.begin() as connection:
        connection.execute(
            insert(enrollments),
            {
                "journey_key": journey,
                "journey_version_id": version,
                "customer_id": customer_id,
                "state": "active",
                "entered_at": entered,
                "updated_at": entered,
                "context": {},
            },
        )


def _message(store: Engine, customer_id: str, key: str) -> None:
    with store.begin() as connection:
        connection.execute(
            insert(messages),
            {
                "idempotency_key": key,
                "customer_id": customer_id,
                "channel": "email",
                "message_key": "m",
                "status": "sent",
                "send_after": NOW,
                "created_at": NOW,
                "attempts": 1,
                "decision": {},
            },
        )


def test_a_profile_linking_two_customers_merges_their_history(
    store: Engine, settings: Settings
) -> None:
    t0 = NOW - timedelta(days=10)
    ingest_profiles(
        store,
        [
            {
                "customer_id": "web-1",
                "email": "ana@example.com",
                "push_tokens": ["tok-web"],
                "consent": {"email": False, "push": True},
                "attributes": {"tier": "silver", "source": "web"},
                "at": "2026-04-20T00:00:00Z",
            },
            {
                "customer_id": "crm-1",
                "phone": "+4915112345678",
                "consent": {"email": True, "sms": True},
                "attributes": {"tier": "gold"},
                "at": "2026-04-25T00:00:00Z",
            },
        ],
        now=t0,
        settings=settings,
    )
    ingest_events(
        store,
        [_event("w-1", customer_id="web-1"), _event("c-1", customer_id="crm-1")],
        now=t0,
        settings=settings,
    )
    version = _journey_version(store)
    _enroll(store, version, "web-1", "welcome", t0)  # entered first: kept
    _enroll(store, version, "crm-1", "welcome", t0 + timedelta(hours=1))
    _enroll(store, version, "web-1", "winback", t0)
    _message(store, "web-1", "k-1")

    result = ingest_profiles(
        store,
        [
            {
                "customer_id": "crm-1",
                "email": "ana@example.com",
                "phone": "+4915112345678",
                "merge": True,
            }
        ],
        now=NOW,
        settings=settings,
    )
    assert (result.accepted, result.rejected) == (1, [])

    assert _customer(store, "web-1").merged_into == "crm-1"
    assert (_customer(store, "web-1").email, _customer(store, "web-1").phone) == (None, None)
    survivor = _customer(store, "crm-1")
    assert survivor.merged_into is None
    assert (survivor.email, survivor.phone) == ("ana@example.com", "+4915112345678")
    assert survivor.attributes == {"tier": "gold", "source": "web"}
    assert _identities_of(store, "crm-1") == {
        ("customer_id", "crm-1"),
        ("customer_id", "web-1"),
        ("email", "ana@example.com"),
        ("phone", "+4915112345678"),
        ("push_token", "tok-web"),
    }
    assert _identities_of(store, "web-1") == set()
    assert _count(store, identities) == 5
    assert {r.customer_id for r in _rows(store, events)} == {"crm-1"}
    assert {r.customer_id for r in _rows(store, messages)} == {"crm-1"}
    rows = _rows(store, consents)
    assert {(r.customer_id, r.channel, r.granted) for r in rows} == {
        ("crm-1", "email", True),  # 04-25 beats 04-20
        ("crm-1", "sms", True),
        ("crm-1", "push", True),
    }
    by_journey = {
        (r.journey_key, r.state, r.end_reason, r.entered_at) for r in _rows(store, enrollments)
    }
    assert by_journey == {
        ("welcome", "active", None, t0),
        ("welcome", "exited", "merged", t0 + timedelta(hours=1)),
        ("winback", "active", None, t0),
    }
    assert {r.customer_id for r in _rows(store, enrollments)} == {"crm-1"}

    later = ingest_events(store, [_event("w-2", customer_id="web-1")], now=NOW, settings=settings)
    assert later.accepted == 1
    assert _customer_of(store, "w-2") == "crm-1"


def test_without_customer_id_the_older_customer_survives(store: Engine, settings: Settings) -> None:
    ingest_profiles(
        store,
        [{"customer_id": "old", "email": "a@example.com"}],
        now=NOW - timedelta(days=1),
        settings=settings,
    )
    ingest_profiles(
        store, [{"customer_id": "new", "phone": "+4915112345678"}], now=NOW, settings=settings
    )
    ingest_profiles(
        store,
        [{"email": "a@example.com", "phone": "+4915112345678", "merge": True}],
        now=NOW,
        settings=settings,
    )
    assert _customer(store, "new").merged_into == "old"
    assert _customer(store, "old").phone == "+4915112345678"


def test_merges_chain_within_one_batch(store: Engine, settings: Settings) -> None:
    ingest_events(
        store,
        [_event("a", customer_id="a"), _event("b", customer_id="b"), _event("c", customer_id="c")],
        now=NOW,
        settings=settings,
    )
    result = ingest_profiles(
        store,
        [
            {"customer_id": "a", "email": "x@example.com"},
            {"customer_id": "b", "email": "x@example.com", "merge": True},  # a -> b
            {"customer_id": "c", "email": "x@example.com", "external_id": "crm-9", "merge": True},
        ],
        now=NOW,
        settings=settings,
    )
    assert result.accepted == 3
    assert {r.id: r.merged_into for r in _rows(store, customers)} == {"a": "c", "b": "c", "c": None}
    assert {r.customer_id for r in _rows(store, events)} == {"c"}
    assert {r.customer_id for r in _rows(store, identities)} == {"c"}


def test_anonymous_browsing_joins_the_customer_on_identify(
    store: Engine, settings: Settings
) -> None:
    browse = [
        _event("v-1", identities={"anonymous_id": "anon-7"}),
        _event("v-2", identities={"anonymous_id": "anon-7"}, name="product.added"),
    ]
    ingest_events(store, browse, now=NOW, settings=settings)
    anonymous = derive_customer_id(("anonymous_id", "anon-7"))
    assert {_customer_of(store, "v-1"), _customer_of(store, "v-2")} == {anonymous}

    ingest_profiles(
        store,
        [{"customer_id": "c-42", "anonymous_id": "anon-7", "email": "ana@example.com"}],
        now=NOW,
        settings=settings,
    )
    assert _customer(store, anonymous).merged_into == "c-42"
    assert {_customer_of(store, "v-1"), _customer_of(store, "v-2")} == {"c-42"}
    ingest_events(
        store, [_event("v-3", identities={"anonymous_id": "anon-7"})], now=NOW, settings=settings
    )
    assert _customer_of(store, "v-3") == "c-42"


def test_a_claimed_push_token_moves_instead_of_merging(store: Engine, settings: Settings) -> None:
    ingest_profiles(
        store,
        [
            {"customer_id": "parent", "push_tokens": ["family-tablet"]},
            {"customer_id": "child", "push_tokens": ["family-tablet"]},
        ],
        now=NOW,
        settings=settings,
    )
    assert _customer(store, "parent").merged_into is None
    assert ("push_token", "family-tablet") in _identities_of(store, "child")
    assert ("push_token", "family-tablet") not in _identities_of(store, "parent")


@pytest.mark.parametrize(
    ("profile", "reason"),
    [
        ({"customer_id": "c-1", "email": "ana@"}, "invalid-email"),
        ({"customer_id": "c-1", "phone": "555"}, "invalid-phone"),
        ({"customer_id": "c-1", "timezone": "Mars/Olympus"}, "invalid-timezone"),
        ({"customer_id": "c-1", "consent": {"fax": True}}, "invalid-consent"),
        ({"customer_id": "c-1", "consent": {"email": "yes"}}, "invalid-consent"),
        ({"email": None, "attributes": {"a": 1}}, "missing-field"),
        ({"customer_id": "c-1", "push_tokens": "tok"}, "invalid-field"),
        ({"customer_id": "c-1", "at": "2026-05-01"}, "invalid-timestamp"),
    ],
)
def test_a_bad_profile_is_rejected_and_nothing_of_it_stored(
    store: Engine, settings: Settings, profile: dict[str, Any], reason: str
) -> None:
    result = ingest_profiles(
        store,
        [profile, {"customer_id": "c-2", "email": "b@example.com"}],
        now=NOW,
        settings=settings,
    )
    assert [(r.index, r.reason) for r in result.rejected] == [(0, reason)]
    assert result.accepted == 1
    assert [r.id for r in _rows(store, customers)] == ["c-2"]


# --- files ----------------------------------------------------------------------------


def _reject_lines(path: Path | None) -> list[dict[str, Any]]:
    assert path is not None
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_jsonl_file_with_bad_lines_loses_no_good_line(
    store: Engine, settings: Settings, tmp_path: Path
) -> None:
    lines = []
    for i in range(1, 31):
        lines.append(json.dumps(_event(f"e-{i}", customer_id=f"c-{i % 4}")))
        if i % 7 == 0:
            lines.append("{not json")
        if i % 11 == 0:
            lines.append(json.dumps(_event(f"bad-{i}", customer_id="c", at="2026-05-01 10:00")))
        if i == 5:
            lines.append("")
            lines.append(json.dumps(_event("pii", customer_id="c", identities={"email": "x@y"})))
    source = tmp_path / "events.jsonl"
    source.write_text("\n".join(lines) + "\n")
    small = settings.model_copy(update={"batch_size": 4})
    seen: list[int] = []

    result = import_file(store, source, "events", settings=small, now=NOW, progress=seen.append)

    assert (result.accepted, result.duplicates, result.rejected) == (30, 0, 7)
    assert {r.event_id for r in _rows(store, events)} == {f"e-{i}" for i in range(1, 31)}
    assert seen == sorted(seen)
    assert seen[-1] == source.stat().st_size
    assert result.rejects_path is not None
    assert result.rejects_path.parent == small.rejects_dir
    rejects = _reject_lines(result.rejects_path)
    numbered = source.read_text().splitlines()
    assert [r["line"] for r in rejects] == sorted(r["line"] for r in rejects)
    for reject in rejects:
        assert numbered[reject["line"] - 1] == reject["raw"]
    assert sorted({r["reason"] for r in rejects}) == [
        "invalid-email",
        "invalid-json",
        "invalid-timestamp",
    ]
    assert all("x@y" not in r["detail"] for r in rejects)

    again = import_file(store, source, "events", settings=small, now=NOW)
    assert (again.accepted, again.duplicates, again.rejected) == (0, 30, 7)
    assert again.rejects_path != result.rejects_path


def test_a_csv_events_file(store: Engine, settings: Settings, tmp_path: Path) -> None:
    source = tmp_path / "events.csv"
    source.write_text(
        "id,name,customer_id,at,properties.sku,properties.price,properties.note,identities.email\n"
        "e-1,product.viewed,c-1,2026-05-01T10:00:00Z,SERUM-30,24.0,,ana@example.com\n"
        'e-2,order.completed,c-1,2026-05-01T11:00:00+02:00,SERUM-30,48,"two\nlines",\n'
        "e-3,product.viewed,c-2,not-a-time,X,1,,\n"
        "e-4,product.viewed,c-2\n"
        "e-5,product.viewed,,2026-05-01T10:00:00Z,X,1,,ana@example.com\n"
    )
    result = import_file(store, source, "events", settings=settings, now=NOW)
    assert (result.accepted, result.rejected) == (3, 2)
    rows = {r.event_id: r for r in _rows(store, events)}
    assert rows["e-1"].properties == {"sku": "SERUM-30", "price": 24.0}
    assert rows["e-2"].properties == {"sku": "SERUM-30", "price": 48, "note": "two\nlines"}
    assert rows["e-2"].at == datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    assert rows["e-5"].customer_id == "c-1"
    assert [(r["line"], r["reason"]) for r in _reject_lines(result.rejects_path)] == [
        (5, "invalid-timestamp"),
        (6, "invalid-csv"),
    ]


def test_a_csv_customers_file(store: Engine, settings: Settings, tmp_path: Path) -> None:
    source = tmp_path / "customers.csv"
    source.write_text(
        "\ufeffcustomer_id,email,phone,push_tokens,timezone,consent.email,consent.sms,attributes.tier,attributes.orders\n"
        "c-1,ana@example.com,0151 12345678,tok-1;tok-2,Europe/Berlin,yes,no,gold,3\n"
        "c-2,bad-address,,,,,,,\n"
        "c-3,,,,,true,,,\n",
        encoding="utf-8",
    )
    result = import_file(store, source, "customers", settings=settings, now=NOW)
    assert (result.accepted, result.duplicates, result.rejected) == (2, 0, 1)
    row = _customer(store, "c-1")
    assert (row.email, row.phone, row.timezone) == (
        "ana@example.com",
        "+4915112345678",
        "Europe/Berlin",
    )
    assert row.attributes == {"tier": "gold", "orders": 3}
    assert {(r.customer_id, r.channel, r.granted) for r in _rows(store, consents)} == {
        ("c-1", "email", True),
        ("c-1", "sms", False),
        ("c-3", "email", True),
    }
    assert ("push_token", "tok-2") in _identities_of(store, "c-1")
    assert [(r["line"], r["reason"]) for r in _reject_lines(result.rejects_path)] == [
        (3, "invalid-email")
    ]
    again = import_file(store, source, "customers", settings=settings, now=NOW)
    assert (again.accepted, again.duplicates) == (0, 2)


def test_a_jsonl_customers_file(store: Engine, settings: Settings, tmp_path: Path) -> None:
    source = tmp_path / "customers.jsonl"
    source.write_text(
        json.dumps({"customer_id": "c-42", "email": "ana@example.com", "consent": {"email": True}})
        + "\n"
        + json.dumps({"customer_id": "c-43", "phone": "nope"})
        + "\n"
    )
    result = import_file(store, source, "customers", settings=settings, now=NOW)
    assert (result.accepted, result.rejected) == (1, 1)
    assert result.rejects_path is not None and result.rejects_path.name.startswith("customers-")


def test_a_file_that_cannot_be_read_raises(
    store: Engine, settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(ImportFileError, match="cannot read"):
        import_file(store, tmp_path / "missing.jsonl", "events", settings=settings, now=NOW)
    wrong = tmp_path / "events.csv"
    wrong.write_text("id,name,at,emial\n")
    with pytest.raises(ImportFileError, match="unknown columns: 'emial'"):
        import_file(store, wrong, "events", settings=settings, now=NOW)


def _write_events(path: Path, count: int) -> None:
    lines = [json.dumps(_event(f"e-{i:03d}", customer_id=f"c-{i % 3}")) for i in range(count)]
    path.write_text("\n".join(lines) + "\n")


def test_a_file_import_commits_per_import_batch_and_a_rerun_completes_it(
    store: Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events from a file go in ``import_batch_size`` at a time: a crash keeps every
    chunk committed before it, and importing the file again stores exactly the rest."""
    source = tmp_path / "events.jsonl"
    _write_events(source, 10)
    chunked = settings.model_copy(update={"batch_size": 2, "import_batch_size": 4})
    store_events = files.store_events
    calls: list[int] = []

    def crash_on_the_third(
        connection: Any, checked: Any, now: datetime, known: Any = None
    ) -> tuple[int, int]:
        calls.append(len(checked))
        if len(calls) == 3:
            raise RuntimeError("power cut")
        return store_events(connection, checked, now, known)

    monkeypatch.setattr(files, "store_events", crash_on_the_third)
    with pytest.raises(RuntimeError, match="power cut"):
        import_file(store, source, "events", settings=chunked, now=NOW)
    assert calls == [4, 4, 2]
    assert _count(store, events) == 8  # two chunks, each its own committed transaction

    monkeypatch.setattr(files, "store_events", store_events)
    seen: list[int] = []
    again = import_file(store, source, "events", settings=chunked, now=NOW, progress=seen.append)
    assert (again.accepted, again.duplicates, again.rejected) == (2, 8, 0)
    assert seen == sorted(seen) and len(seen) == 3 and seen[-1] == source.stat().st_size
    assert _count(store, events) == 10


def test_a_file_import_keeps_file_order_and_writes_what_the_column_types_would(
    store: Engine, settings: Settings, tmp_path: Path
) -> None:
    stamps = [
        "2026-05-01T10:00:00.000007Z",  # the common form: UTC with microseconds
        "2026-05-01T10:00:00Z",
        "2026-05-01T12:00:00.5+02:00",
        "2026-05-01T10:00:00.000007+00:00",
        "2026-05-01 10:00:00.000007Z",
    ]
    source = tmp_path / "events.jsonl"
    records = [_event(f"z-{9 - i}", customer_id=f"c-{i}", at=at) for i, at in enumerate(stamps)]
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    small = settings.model_copy(update={"batch_size": 2, "import_batch_size": 3})
    result = import_file(store, source, "events", settings=small, now=NOW)
    assert (result.accepted, result.rejected) == (5, 0)
    stored = sorted(_rows(store, events), key=lambda row: row.seq)
    assert [row.event_id for row in stored] == [r["id"] for r in records]  # arrival order
    assert [row.at for row in stored] == [datetime.fromisoformat(at) for at in stamps]
    with store.begin() as connection:
        row = {"name": "x", "customer_id": "c", "received_at": NOW, "properties": {}}
        connection.execute(
            insert(events),
            [
                {**row, "event_id": f"core-{i}", "at": datetime.fromisoformat(at)}
                for i, at in enumerate(stamps)
            ],
        )
        raw = dict(connection.execute(select(events.c.event_id, events.c.at)).all())
    assert [raw[r["id"]] for r in records] == [raw[f"core-{i}"] for i in range(len(stamps))]


def test_an_error_while_reading_keeps_the_committed_chunks_and_is_raised(
    store: Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "events.jsonl"
    _write_events(source, 10)
    check_events = import_chunks.check_events
    batches: list[int] = []

    def fail_on_the_third(records: Any, region: str, sqlite: bool) -> Any:
        batches.append(len(records))
        if len(batches) == 3:
            raise RuntimeError("disk gone")
        return check_events(records, region, sqlite)

    monkeypatch.setattr(import_chunks, "check_events", fail_on_the_third)
    chunked = settings.model_copy(update={"batch_size": 2, "import_batch_size": 4})
    with pytest.raises(RuntimeError, match="disk gone"):
        import_file(store, source, "events", settings=chunked, now=NOW)
    assert _count(store, events) == 4


# --- the Python API ---------------------------------------------------------------------


@pytest.fixture
def api_settings(store: Engine, tmp_path: Path) -> Iterator[Settings]:
    yield Settings(
        home=tmp_path / "api", database_url=store.url.render_as_string(hide_password=False)
    )
    for engine in api._engines.values():
        engine.dispose()
    api._engines.clear()


def test_track_and_identify(store: Engine, api_settings: Settings) -> None:
    event_id = omni_journey.track(
        "product.viewed",
        identities={"anonymous_id": "anon-1"},
        properties={"sku": "SERUM-30"},
        at="2026-05-01T10:00:00Z",
        settings=api_settings,
    )
    assert event_id.startswith("evt-")
    assert (
        omni_journey.track(
            "order.completed",
            "c-1",
            event_id="o-1",
            properties={"total": 10},
            settings=api_settings,
        )
        == "o-1"
    )
    omni_journey.track("order.completed", "c-1", event_id="o-1", settings=api_settings)  # no-op
    omni_journey.identify(
        "c-1",
        anonymous_id="anon-1",
        email="ana@example.com",
        consent={"email": True},
        attributes={"tier": "gold"},
        settings=api_settings,
    )
    assert {r.customer_id for r in _rows(store, events)} == {"c-1"}
    assert _count(store, events) == 2
    assert _customer(store, "c-1").attributes == {"tier": "gold"}
    assert len(api._engines) == 1

    with pytest.raises(IngestError) as rejected:
        omni_journey.identify("c-1", email="not-an-email", settings=api_settings)
    assert rejected.value.reason == "invalid-email"
    assert "not-an-email" not in str(rejected.value)
    with pytest.raises(IngestError, match="invalid-timestamp"):
        omni_journey.track("x", "c-1", at=datetime(2026, 5, 1), settings=api_settings)


def test_importing_the_package_stays_free_of_side_effects() -> None:
    code = (
        "import sys, omni_journey\n"
        "assert 'sqlalchemy' not in sys.modules and 'omni_journey.api' not in sys.modules\n"
        "assert {'track', 'identify'} <= set(dir(omni_journey))\n"
        "assert callable(omni_journey.track) and 'omni_journey.api' in sys.modules\n"
        "assert not hasattr(omni_journey, 'nope')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNI_")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert sorted(omni_journey.__all__) == ["__version__", "identify", "track"]
