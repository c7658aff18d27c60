"""The schema migrates on both databases and matches the models exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from omni_journey.store import upgrade
from omni_journey.store.tables import Enrollment, Event, JourneyVersion, metadata

NOW = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


def test_migrations_match_models(store: Engine) -> None:
    with store.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), metadata)
    assert diff == []


def test_upgrade_is_idempotent(store: Engine) -> None:
    upgrade(store)
    upgrade(store)


def test_head_revision_is_alembics_head(store: Engine) -> None:
    """The head read from the migration files' text is the one Alembic finds, and the
    store, once upgraded, records it (so ``upgrade`` may return without Alembic)."""
    from alembic.script import ScriptDirectory

    from omni_journey.store.db import alembic_config, head_revision

    head = ScriptDirectory.from_config(alembic_config(store)).get_current_head()
    assert head is not None
    assert head_revision() == head
    with store.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head


def test_upgrade_at_head_does_not_import_alembic(store: Engine) -> None:
    """A store at the newest revision is opened without importing Alembic."""
    import subprocess
    import sys

    program = (
        "import sys; from omni_journey.store import open_store; "
        f"open_store({store.url.render_as_string(hide_password=False)!r}).dispose(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_upgrade_of_an_empty_store_migrates(tmp_path: Path) -> None:
    """No ``alembic_version`` table yet: the cheap check falls through to Alembic."""
    from omni_journey.store import open_store

    engine = open_store(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        with engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() is not None
            assert connection.execute(select(Enrollment.__table__)).all() == []  # type: ignore[call-overload]
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_mode(sqlite_store: Engine) -> None:
    with sqlite_store.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_timestamps_round_trip_as_aware_utc(store: Engine) -> None:
    berlin = datetime(2026, 5, 1, 12, 0, tzinfo=UTC) + timedelta(hours=0)
    with store.begin() as connection:
        connection.execute(
            insert(Event.__table__),  # type: ignore[arg-type]
            [
                {
                    "event_id": "e-1",
                    "name": "product.viewed",
                    "customer_id": "c-1",
                    "at": berlin,
                    "received_at": NOW,
                    "properties": {"sku": "SERUM-30"},
                }
            ],
        )
        row = connection.execute(select(Event.__table__)).one()  # type: ignore[call-overload]
    assert row.at == berlin
    assert row.at.tzinfo is not None
    assert row.properties == {"sku": "SERUM-30"}


def test_event_id_is_unique(store: Engine) -> None:
    row = {
        "event_id": "e-1",
        "name": "x",
        "customer_id": "c",
        "at": NOW,
        "received_at": NOW,
        "properties": {},
    }
    with store.begin() as connection:
        connection.execute(insert(Event.__table__), [row])  # type: ignore[arg-type]
    with pytest.raises(IntegrityError), store.begin() as connection:
        connection.execute(insert(Event.__table__), [row])  # type: ignore[arg-type]


def test_one_active_enrollment_per_customer_and_journey(store: Engine) -> None:
    with store.begin() as connection:
        version_id = connection.execute(
            insert(JourneyVersion.__table__).returning(JourneyVersion.__table__.c.id),  # type: ignore[attr-defined]
            {"journey_key": "j", "version": 1, "spec_hash": "h", "spec": {}, "published_at": NOW},
        ).scalar_one()
    base = {
        "journey_key": "j",
        "journey_version_id": version_id,
        "customer_id": "c-1",
        "entered_at": NOW,
        "updated_at": NOW,
        "context": {},
    }
    with store.begin() as connection:
        connection.execute(insert(Enrollment.__table__), [{**base, "state": "completed"}])  # type: ignore[arg-type]
        connection.execute(insert(Enrollment.__table__), [{**base, "state": "active"}])  # type: ignore[arg-type]
    with pytest.raises(IntegrityError), store.begin() as connection:
        connection.execute(insert(Enrollment.__table__), [{**base, "state": "active"}])  # type: ignore[arg-type]


def test_json_columns_read_what_json_dumps_wrote_even_where_orjson_refuses(
    sqlite_store: Engine,
) -> None:
    """JSON columns are read with orjson; ``NaN`` and integers past 64 bits, which
    ``json.dumps`` writes and orjson refuses, still read back."""
    with sqlite_store.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO events (event_id, name, customer_id, at, received_at, properties) "
            "VALUES (?, 'n', 'c', '2026-05-01 10:00:00.000000', '2026-05-01 10:00:00.000000', ?)",
            [
                ("plain", '{"sku": "A", "n": [1, 2.5, null]}'),
                ("odd", '{"x": NaN, "big": 123456789012345678901234567890}'),
            ],
        )
        stored = dict(connection.execute(select(Event.event_id, Event.properties)).all())
    assert stored["plain"] == {"sku": "A", "n": [1, 2.5, None]}
    assert stored["odd"]["big"] == 123456789012345678901234567890
    assert stored["odd"]["x"] != stored["odd"]["x"]  # NaN
