"""Events into the store: one durable transaction per batch, idempotent on the event id.

A re-import stores nothing and counts duplicates (``ON CONFLICT DO NOTHING``); events
never merge customers (an identity another customer owns is counted and left alone).
The rows are checked outside the transaction (:mod:`omni_journey.ingest.event_rows`)
and written with driver ``executemany`` / ``unnest``, not SQLAlchemy's per-row binds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from itertools import repeat
from typing import Any, cast

from sqlalchemy import Connection, Engine

from omni_journey.identity import (
    KnownCustomers,
    resolve_event_customers,
    resolve_named_customers,
)
from omni_journey.ingest.event_rows import CheckedEvents, check_events
from omni_journey.ingest.results import BatchResult
from omni_journey.ingest.transactions import open_connection, write_transaction
from omni_journey.settings import Settings
from omni_journey.store.driver import DriverSql
from omni_journey.store.events import append_event_rows

__all__ = ["ingest_events", "store_events"]

log = logging.getLogger(__name__)


def ingest_events(
    engine: Engine, records: Sequence[Mapping[str, Any]], *, now: datetime, settings: Settings
) -> BatchResult:
    """Store a batch of events (docs/data-formats.md); see the module docstring."""
    with open_connection(engine) as connection:
        return _ingest_events(connection, records, now, settings)


def _ingest_events(
    connection: Connection,
    records: Sequence[Mapping[str, Any]],
    now: datetime,
    settings: Settings,
) -> BatchResult:
    checked = check_events(records, settings.default_region, connection.dialect.name == "sqlite")
    if not checked:
        return BatchResult(0, 0, checked.rejected)
    with write_transaction(connection, exclusive=False):
        accepted, conflicts = store_events(connection, checked, now)
    return BatchResult(accepted, len(checked) - accepted, checked.rejected, conflicts)


def store_events(
    connection: Connection,
    checked: CheckedEvents,
    now: datetime,
    known: KnownCustomers | None = None,
) -> tuple[int, int]:
    """Resolve the customers of checked rows and insert them, inside the caller's
    transaction: (events stored, identity conflicts)."""
    if any(checked.keys) or None in checked.customer_ids:
        who = list(zip(checked.customer_ids, checked.keys, strict=True))
        resolution = resolve_event_customers(connection, who, now=now)
    else:  # every event names its customer: no identities to attach
        named = cast(list[str], checked.customer_ids)
        resolution = resolve_named_customers(connection, named, now=now, known=known)
    stamp = DriverSql(connection).timestamp
    rows = zip(  # built one at a time, as executemany takes them
        checked.event_ids,
        checked.names,
        resolution.customer_ids,
        checked.ats,
        checked.properties,
        repeat(stamp(now)),
        strict=False,  # repeat() never ends
    )
    accepted = append_event_rows(connection, rows)
    if resolution.conflicts:
        log.warning(
            "%d event identities belong to another customer and were left in place",
            resolution.conflicts,
        )
    return accepted, resolution.conflicts
