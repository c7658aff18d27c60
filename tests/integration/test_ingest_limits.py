"""Ingestion's limits against real SQLite and PostgreSQL stores: the accepted time range,
the nesting depth, exact numeric ids, identity conflicts, and the rejects files
(private, and kept only ``OMNI_REJECTS_RETENTION_DAYS``)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Table, select

import omni_journey
from omni_journey import api
from omni_journey.errors import IngestError
from omni_journey.ingest.intake import import_file, ingest_events, ingest_profiles
from omni_journey.settings import Settings
from omni_journey.store.tables import metadata

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
customers: Table = metadata.tables["customers"]
events: Table = metadata.tables["events"]

OVERFLOWING = ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", default_region="DE", import_reader="inline")


def _event(event_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "name": "product.viewed",
        "customer_id": "c-1",
        "at": "2026-05-01T10:00:00Z",
        **fields,
    }


def _rows(store: Engine, table: Table) -> list[Any]:
    with store.connect() as connection:
        return list(connection.execute(select(table)))


def _rejects(path: Path | None) -> list[dict[str, Any]]:
    assert path is not None
    return [json.loads(line) for line in path.read_text().splitlines()]


def _nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"k": value}
    return value


# --- timestamps ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "at",
    [
        *OVERFLOWING,
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
        datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))),
        "1899-12-31T23:59:59.999999Z",
        "2999-12-31T23:00:00-01:00",
    ],
)
def test_events_out_of_range_are_rejected_and_the_rest_stored(
    store: Engine, settings: Settings, at: Any
) -> None:
    batch = [_event("e-1"), _event("e-2", at=at), _event("e-3")]
    result = ingest_events(store, batch, now=NOW, settings=settings)
    assert [(r.index, r.reason) for r in result.rejected] == [(1, "invalid-timestamp")]
    assert "1900-01-01" in result.rejected[0].detail and "2999-12-31" in result.rejected[0].detail
    assert result.accepted == 2
    assert sorted(r.event_id for r in _rows(store, events)) == ["e-1", "e-3"]


def test_the_edges_of_the_range_are_accepted(store: Engine, settings: Settings) -> None:
    batch = [
        _event("first", at="1900-01-01T00:00:00Z"),
        _event("last", at="2999-12-31T23:59:59.999999Z"),
        _event("local", at="1900-01-01T05:00:00+05:00"),
    ]
    result = ingest_events(store, batch, now=NOW, settings=settings)
    assert (result.accepted, result.rejected) == (3, [])


@pytest.mark.parametrize("at", OVERFLOWING)
def test_a_profile_statement_out_of_range_is_rejected(
    store: Engine, settings: Settings, at: str
) -> None:
    result = ingest_profiles(
        store,
        [{"customer_id": "c-1", "consent": {"email": True}, "at": at}, {"customer_id": "c-2"}],
        now=NOW,
        settings=settings,
    )
    assert [(r.index, r.reason) for r in result.rejected] == [(0, "invalid-timestamp")]
    assert [r.id for r in _rows(store, customers)] == ["c-2"]


@pytest.mark.parametrize("kind", ["events", "customers"])
def test_files_keep_every_good_line_around_timestamps_out_of_range(
    store: Engine, settings: Settings, tmp_path: Path, kind: str
) -> None:
    if kind == "events":
        lines = [_event(f"e-{i}", at=OVERFLOWING[i % 2] if i in (2, 5) else NOW.isoformat())
                 for i in range(8)]  # fmt: skip
    else:
        lines = [{"customer_id": f"c-{i}", "at": OVERFLOWING[i % 2] if i in (2, 5) else None}
                 for i in range(8)]  # fmt: skip
    source = tmp_path / f"{kind}.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = import_file(store, source, kind, settings=settings, now=NOW)  # type: ignore[arg-type]
    assert (result.accepted, result.rejected) == (6, 2)
    assert [(r["line"], r["reason"]) for r in _rejects(result.rejects_path)] == [
        (3, "invalid-timestamp"),
        (6, "invalid-timestamp"),
    ]


# --- nesting ---------------------------------------------------------------------------


def test_properties_and_attributes_nest_at_most_32_levels(
    store: Engine, settings: Settings
) -> None:
    deep_events = [
        _event("ok", properties=_nested(32)),
        _event("deep", properties=_nested(33)),
        _event("deeper", properties=_nested(1000)),
    ]
    result = ingest_events(store, deep_events, now=NOW, settings=settings)
    assert [(r.index, r.reason) for r in result.rejected] == [
        (1, "too-deeply-nested"),
        (2, "too-deeply-nested"),
    ]
    assert [r.event_id for r in _rows(store, events)] == ["ok"]
    profiles = [
        {"customer_id": "c-1", "attributes": _nested(32)},
        {"customer_id": "c-2", "attributes": _nested(5000)},
    ]
    outcome = ingest_profiles(store, profiles, now=NOW, settings=settings)
    assert [(r.index, r.reason) for r in outcome.rejected] == [(1, "too-deeply-nested")]


def test_a_deep_line_in_a_file_is_a_reject(
    store: Engine, settings: Settings, tmp_path: Path
) -> None:
    source = tmp_path / "events.jsonl"
    deep = '{"id": "e-2", "name": "x", "customer_id": "c", "at": "2026-05-01T10:00:00Z", '
    deep += '"properties": ' + '{"k": ' * 1000 + "1" + "}" * 1001
    source.write_text(json.dumps(_event("e-1")) + "\n" + deep + "\n" + json.dumps(_event("e-3")))
    result = import_file(store, source, "events", settings=settings, now=NOW)
    assert (result.accepted, result.rejected) == (2, 1)
    assert [r["reason"] for r in _rejects(result.rejects_path)] == ["too-deeply-nested"]


# --- numeric ids -----------------------------------------------------------------------


def test_numeric_ids_in_files_stay_exact(store: Engine, settings: Settings, tmp_path: Path) -> None:
    big = 2**64
    source = tmp_path / "events.jsonl"
    source.write_text(
        "".join(
            f'{{"id": {big + n}, "name": "x", "customer_id": {big + n}, '
            f'"at": "2026-05-01T10:00:00Z", "properties": {{"n": {big}}}}}\n'
            for n in range(3)
        )
        + '{"id": "e-f", "name": "x", "customer_id": 1e20, "at": "2026-05-01T10:00:00Z"}\n'
        + '{"id": "e-g", "name": "x", "customer_id": 1.5, "at": "2026-05-01T10:00:00Z"}\n'
    )
    result = import_file(store, source, "events", settings=settings, now=NOW)
    assert (result.accepted, result.rejected) == (3, 2)
    stored = {r.event_id: r.customer_id for r in _rows(store, events)}
    assert stored == {str(big + n): str(big + n) for n in range(3)}
    rejects = _rejects(result.rejects_path)
    assert [(r["line"], r["reason"]) for r in rejects] == [(4, "invalid-id"), (5, "invalid-id")]
    assert all("1e20" not in r["detail"] and "1.5" not in r["detail"] for r in rejects)

    profiles = tmp_path / "customers.jsonl"
    profiles.write_text(
        f'{{"customer_id": {big}, "external_id": {big + 1}}}\n'
        f'{{"customer_id": {big + 2}, "anonymous_id": {-(2**63) - 1}}}\n'
        '{"customer_id": 2.5}\n'
    )
    outcome = import_file(store, profiles, "customers", settings=settings, now=NOW)
    assert (outcome.accepted, outcome.rejected) == (2, 1)
    assert {str(big), str(big + 2)} <= {r.id for r in _rows(store, customers)}


@pytest.mark.parametrize("value", [1.5, 1e20, float(2**64)])
def test_decimal_ids_are_rejected_by_the_python_ingestion(
    store: Engine, settings: Settings, value: float
) -> None:
    result = ingest_events(store, [_event("e-1", customer_id=value)], now=NOW, settings=settings)
    assert [r.reason for r in result.rejected] == ["invalid-id"]
    profile = ingest_profiles(store, [{"customer_id": value}], now=NOW, settings=settings)
    assert [r.reason for r in profile.rejected] == ["invalid-id"]
    exact = ingest_events(store, [_event("e-2", customer_id=2**70)], now=NOW, settings=settings)
    assert exact.accepted == 1
    assert [r.customer_id for r in _rows(store, events)] == [str(2**70)]


# --- identity conflicts ----------------------------------------------------------------


def test_a_customers_file_never_merges_two_known_customers_silently(
    store: Engine, settings: Settings, tmp_path: Path
) -> None:
    source = tmp_path / "customers.jsonl"
    source.write_text(
        json.dumps({"customer_id": "c-1", "email": "ana@example.com"})
        + "\n"
        + json.dumps({"customer_id": "c-2", "email": "ana@example.com", "phone": "+4915112345678"})
        + "\n"
        + json.dumps({"customer_id": "c-3", "email": "bob@example.com"})
        + "\n"
    )
    result = import_file(store, source, "customers", settings=settings, now=NOW)
    assert (result.accepted, result.duplicates, result.rejected) == (2, 0, 1)
    (reject,) = _rejects(result.rejects_path)
    assert (reject["line"], reject["reason"]) == (2, "identity-conflict")
    assert "email" in reject["detail"] and "ana@" not in reject["detail"]
    assert {(r.id, r.merged_into) for r in _rows(store, customers)} == {
        ("c-1", None),
        ("c-3", None),
    }

    merge = tmp_path / "merge.jsonl"
    merge.write_text(json.dumps({"customer_id": "c-2", "email": "ana@example.com", "merge": True}))
    merged = import_file(store, merge, "customers", settings=settings, now=NOW)
    assert (merged.accepted, merged.rejected) == (1, 0)
    assert {r.id: r.merged_into for r in _rows(store, customers)}["c-1"] == "c-2"


def test_a_profile_batch_reports_the_conflict_and_keeps_the_rest(
    store: Engine, settings: Settings
) -> None:
    ingest_profiles(
        store,
        [
            {"customer_id": "c-1", "email": "a@example.com"},
            {"customer_id": "c-2", "phone": "+4915112345678"},
        ],
        now=NOW,
        settings=settings,
    )
    result = ingest_profiles(
        store,
        [
            {"customer_id": "c-9", "attributes": {"x": 1}},
            {"email": "a@example.com", "phone": "+4915112345678"},  # c-1 and c-2
            {"customer_id": "c-1", "phone": "+4915112345678", "merge": "yes"},
            {"customer_id": "c-8", "email": "a@example.com", "attributes": {"y": 2}},
        ],
        now=NOW,
        settings=settings,
    )
    assert [(r.index, r.reason) for r in result.rejected] == [
        (1, "identity-conflict"),
        (2, "invalid-field"),
        (3, "identity-conflict"),
    ]
    assert result.accepted == 1
    assert {r.id: r.merged_into for r in _rows(store, customers)} == {
        "c-1": None,
        "c-2": None,
        "c-9": None,
    }


@pytest.fixture
def api_settings(store: Engine, tmp_path: Path) -> Iterator[Settings]:
    yield Settings(
        home=tmp_path / "api", database_url=store.url.render_as_string(hide_password=False)
    )
    for engine in api._engines.values():
        engine.dispose()
    api._engines.clear()


def test_the_python_api_rejects_conflicts_limits_and_decimal_ids(
    store: Engine, api_settings: Settings
) -> None:
    omni_journey.identify("c-1", email="ana@example.com", settings=api_settings)
    with pytest.raises(IngestError) as conflict:
        omni_journey.identify("c-2", email="ana@example.com", settings=api_settings)
    assert conflict.value.reason == "identity-conflict"
    assert "ana@" not in str(conflict.value)
    omni_journey.identify("c-2", email="ana@example.com", merge=True, settings=api_settings)
    assert {r.id: r.merged_into for r in _rows(store, customers)}["c-1"] == "c-2"

    for at in OVERFLOWING:
        with pytest.raises(IngestError, match="invalid-timestamp"):
            omni_journey.track("x", "c-1", at=at, settings=api_settings)
    with pytest.raises(IngestError, match="too-deeply-nested"):
        omni_journey.track("x", "c-1", properties={"a": _nested(40)}, settings=api_settings)
    with pytest.raises(IngestError, match="invalid-id"):
        omni_journey.track("x", 1e20, settings=api_settings)  # type: ignore[arg-type]


# --- rejects files ---------------------------------------------------------------------


def test_rejects_files_are_private_and_old_ones_are_deleted(store: Engine, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", rejects_retention_days=30, import_reader="inline")
    source = tmp_path / "events.jsonl"
    source.write_text("{oops\n")
    old = NOW - timedelta(days=31)
    directory = settings.rejects_dir
    directory.mkdir(parents=True)
    directory.chmod(0o755)
    stale = directory / "events-old-20260330T120000Z.rejects.jsonl"
    fresh = directory / "events-old-20260415T120000Z.rejects.jsonl"
    other = directory / "notes.txt"
    for path, when in ((stale, old), (fresh, NOW - timedelta(days=29)), (other, old)):
        path.write_text("{}\n")
        os.utime(path, (when.timestamp(), when.timestamp()))

    result = import_file(store, source, "events", settings=settings, now=NOW)

    assert result.rejects_path is not None
    assert stat.S_IMODE(result.rejects_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert not stale.exists()
    assert fresh.exists() and other.exists()  # younger, or not a rejects file
