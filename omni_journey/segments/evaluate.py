"""Incremental segment membership: who entered and who left since the last evaluation.

Each segment is evaluated in its own transaction: its ``segment_states`` row is locked,
the compiled query gives today's members, ``segment_memberships`` gives the last
evaluation's, and the difference is written back together with one ``segment.entered``
or ``segment.exited`` event per customer (deterministic ids, inserted with
``ON CONFLICT DO NOTHING``), so a journey with a segment trigger can enter them.

The first evaluation of a segment records a baseline: everyone already in it counts as
entered in the returned delta, but no events are emitted unless ``emit_on_first`` is
set; otherwise adding a segment file would message its whole audience at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    String,
    Table,
    any_,
    bindparam,
    cast,
    func,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from omni_journey.segments.compile import compile_segment
from omni_journey.spec.models import SegmentSpec
from omni_journey.store.events import append_events, append_events_from
from omni_journey.store.ops import insert_ignore
from omni_journey.store.tables import metadata
from omni_journey.store.types import UTCDateTime

__all__ = [
    "SEGMENT_ENTERED",
    "SEGMENT_EXITED",
    "Delta",
    "evaluate_segment",
    "evaluate_segments",
    "forget_members",
    "segment_event_id",
    "spec_hash",
]

SEGMENT_ENTERED = "segment.entered"
SEGMENT_EXITED = "segment.exited"
_CHUNK = 5000

memberships: Table = metadata.tables["segment_memberships"]
states: Table = metadata.tables["segment_states"]
events: Table = metadata.tables["events"]


@dataclass(frozen=True)
class Delta:
    """What changed in one segment: ids that ``entered`` and ``left`` (sorted), the new
    ``size``, and whether this was the segment's first (``baseline``) evaluation."""

    entered: list[str]
    left: list[str]
    size: int
    baseline: bool = False


def spec_hash(segment: SegmentSpec) -> str:
    canonical = json.dumps(segment.model_dump(mode="json", by_alias=True), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def segment_event_id(name: str, segment_key: str, customer_id: str, at: datetime) -> str:
    """``segment.entered:<segment>:<customer>:<UTC time>``: the same inputs, the same id."""
    stamp = at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{name}:{segment_key}:{customer_id}:{stamp}"


def evaluate_segments(
    engine: Engine,
    segments: Mapping[str, SegmentSpec],
    *,
    now: datetime,
    keys: Iterable[str] | None = None,
    emit_on_first: bool = False,
) -> dict[str, Delta]:
    """Evaluate ``keys`` (default: every segment), one transaction per segment."""
    deltas: dict[str, Delta] = {}
    for key in sorted(keys if keys is not None else segments):
        with engine.begin() as connection:
            deltas[key] = evaluate_segment(
                connection, segments[key], segments, now=now, emit_on_first=emit_on_first
            )
    return deltas


def evaluate_segment(
    connection: Connection,
    segment: SegmentSpec,
    segments: Mapping[str, SegmentSpec],
    *,
    now: datetime,
    emit_on_first: bool = False,
) -> Delta:
    """One segment, inside the caller's transaction."""
    key = segment.key
    baseline = _lock_state(connection, key, now)
    query = compile_segment(segment, segments, now=now, dialect=connection.dialect.name)
    current = {str(row[0]) for row in connection.execute(query)}
    last = select(memberships.c.customer_id).where(memberships.c.segment_key == key)
    previous = {str(row[0]) for row in connection.execute(last)}
    entered = sorted(current - previous)
    left = sorted(previous - current)
    _write_memberships(connection, key, entered, left, now)
    if not baseline or emit_on_first:
        _emit(connection, SEGMENT_ENTERED, key, entered, now)
    _emit(connection, SEGMENT_EXITED, key, left, now)
    connection.execute(
        states.update()
        .where(states.c.segment_key == key)
        .values(spec_hash=spec_hash(segment), size=len(current), evaluated_at=now)
    )
    return Delta(entered=entered, left=left, size=len(current), baseline=baseline)


def _lock_state(connection: Connection, key: str, now: datetime) -> bool:
    """Lock the segment's state row (creating it); True when it did not exist."""
    connection.execute(
        insert_ignore(connection, states, "segment_key"),
        {"segment_key": key, "spec_hash": "", "size": 0, "evaluated_at": now},
    )
    row = connection.execute(
        select(states.c.spec_hash).where(states.c.segment_key == key).with_for_update()
    ).one()
    return bool(row.spec_hash == "")


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _ids(values: Sequence[str]) -> Any:
    return bindparam("ids", list(values), type_=ARRAY(String))


def _write_memberships(
    connection: Connection, key: str, entered: list[str], left: list[str], now: datetime
) -> None:
    postgres = connection.dialect.name == "postgresql"
    for chunk in _chunks(entered):
        if postgres:  # one statement per chunk: the ids travel as one array
            rows = select(
                literal(key, String), func.unnest(_ids(chunk)), literal(now, UTCDateTime())
            )
            connection.execute(
                memberships.insert().from_select(["segment_key", "customer_id", "entered_at"], rows)
            )
        else:  # sqlite3's executemany runs in C: as fast as it gets there
            connection.execute(
                memberships.insert(),
                [{"segment_key": key, "customer_id": cid, "entered_at": now} for cid in chunk],
            )
    for chunk in _chunks(left):
        connection.execute(
            memberships.delete().where(
                memberships.c.segment_key == key,
                memberships.c.customer_id == any_(_ids(chunk))
                if postgres
                else memberships.c.customer_id.in_(list(chunk)),
            )
        )


def _emit(connection: Connection, name: str, key: str, ids: list[str], now: datetime) -> None:
    properties = {"segment": key}
    for chunk in _chunks(ids):
        if connection.dialect.name == "postgresql":
            rows = select(
                func.unnest(
                    bindparam(
                        "event_ids",
                        [segment_event_id(name, key, cid, now) for cid in chunk],
                        type_=ARRAY(String),
                    )
                ),
                literal(name, String),
                func.unnest(_ids(chunk)),
                literal(now, UTCDateTime()),
                literal(now, UTCDateTime()),
                cast(literal(json.dumps(properties), String), JSONB),
            )
            columns = ["event_id", "name", "customer_id", "at", "received_at", "properties"]
            append_events_from(connection, columns, rows)
            continue
        append_events(
            connection,
            [
                {
                    "event_id": segment_event_id(name, key, cid, now),
                    "name": name,
                    "customer_id": cid,
                    "at": now,
                    "received_at": now,
                    "properties": properties,
                }
                for cid in chunk
            ],
        )


def forget_members(connection: Connection, customer_ids: Sequence[str]) -> int:
    """An erased customer leaves every segment, silently (no ``segment.exited``: the
    customer is gone); the next evaluation's sizes count without them."""
    result = connection.execute(
        memberships.delete().where(memberships.c.customer_id.in_(list(customer_ids)))
    )
    return int(result.rowcount or 0)
