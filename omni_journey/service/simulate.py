"""Time-travel dry run: replay a journey over N days, with the production code.

A throw-away SQLite store receives the customers, then the events in time order; at
each moment something can happen (an event arrives, a wait comes due) the same
:class:`JourneyRunner` that production uses runs a pass with ``now`` set to that moment.
Nothing is sent: sends stay in the simulated outbox, each one rendered as dispatch
would render it (a message that fails to render for its customer and event is a skip
with the render error's code, as it would be in production), and are reported.
Catalogue events (``customer_id`` ``_catalogue``) are fanned out to the customers who
viewed the product the moment they arrive, as the scheduled segments flow does.

The window runs from ``start`` (default: midnight of the first event's day) for
``days``, or, without ``days``, to :data:`AFTER_LAST_EVENT` after the last event, so
every event given is replayed. Events left outside the window, lines of the files
with keys omni-journey does not read, and records ingestion rejects are reported in
``warnings``, never dropped silently.

The replay is deterministic: the same files, journey and code give the same JSON on
any machine and day, whatever ``PYTHONHASHSEED``. Time is only ever the simulated
``now`` (the start comes from the events or ``--start``, never from the clock), and the
report reads the store in a fixed order.
"""

from __future__ import annotations

import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, and_, select

from omni_journey.errors import ConfigError
from omni_journey.ingest.intake import import_file, ingest_events
from omni_journey.ingest.readers import read_records
from omni_journey.ingest.record_keys import EVENT_KEYS, UnknownKeys, unknown_keys
from omni_journey.runner.passes import JourneyRunner
from omni_journey.segments.triggers import (
    CATALOGUE_CUSTOMER_ID,
    CATALOGUE_EVENTS,
    fan_out_catalogue_events,
)
from omni_journey.service.simulate_sends import render_sends
from omni_journey.settings import Settings
from omni_journey.spec.models import FrequencyCap, JourneySpec, SegmentSpec
from omni_journey.store import open_store
from omni_journey.store.core import JOURNEY_LOG, JOURNEY_VERSIONS, MESSAGES

__all__ = ["AFTER_LAST_EVENT", "simulate"]

_MIN_TICK = timedelta(seconds=1)
AFTER_LAST_EVENT = timedelta(days=14)  # the default window's end, after the last event
_NAMED = 5  # events a warning names


def _event_time(record: Mapping[str, Any]) -> datetime:
    at = _parse_at(record.get("at"))
    assert at is not None  # records without a valid time were filtered out
    return at


def _parse_at(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else None
    return None


def simulate(
    journey: JourneySpec,
    segments: Mapping[str, SegmentSpec],
    customers_file: Path,
    events_file: Path,
    *,
    days: int | None = None,
    settings: Settings,
    start: datetime | None = None,
    global_cap: FrequencyCap | None = None,
    workdir: Path | None = None,
    templates_dir: Path | None = None,
) -> dict[str, Any]:
    """Replay ``journey`` over ``days`` (``None``: to :data:`AFTER_LAST_EVENT` after the
    last event) and return the ``simulate --json`` object (docs/journeys.md). Sends are
    rendered from ``templates_dir`` (default: the project's ``templates/``)."""
    templates = templates_dir or settings.project_dir / "templates"
    with tempfile.TemporaryDirectory(prefix="omni-sim-", dir=workdir) as tmp:
        sim_settings = settings.model_copy(
            update={"home": Path(tmp), "database_url": f"sqlite:///{Path(tmp) / 'sim.db'}"}
        )
        engine = open_store(sim_settings.resolved_database_url)
        try:
            return _simulate(
                engine,
                journey,
                segments,
                customers_file,
                events_file,
                days,
                sim_settings,
                start,
                global_cap,
                templates,
            )
        finally:
            engine.dispose()


def _simulate(
    engine: Engine,
    journey: JourneySpec,
    segments: Mapping[str, SegmentSpec],
    customers_file: Path,
    events_file: Path,
    days: int | None,
    settings: Settings,
    start: datetime | None,
    global_cap: FrequencyCap | None,
    templates: Path,
) -> dict[str, Any]:
    warnings: list[str] = []
    records = list(read_records(events_file))
    events = [r for r in records if _parse_at(r.get("at")) is not None]
    if len(events) < len(records):
        warnings.append(
            f'{len(records) - len(events)} events have no valid "at" (ISO 8601 with a zone) '
            "and were left out"
        )
    _warn_unknown(warnings, "events file", _unknown_in(events))
    events.sort(key=_event_time)
    begin = start or _first_day(events)
    end = (
        begin + timedelta(days=days)
        if days is not None
        else max(begin, _event_time(events[-1]) if events else begin) + AFTER_LAST_EVENT
    )
    warnings += _outside(events, begin, end)
    imported = import_file(engine, customers_file, "customers", settings=settings, now=begin)
    _warn_unknown(warnings, "customers file", imported.unknown)
    warnings += _rejected_lines(imported.rejects_path)
    runner = JourneyRunner(
        engine,
        {journey.key: journey},
        segments,
        batch_size=settings.batch_size,
        global_cap=global_cap,
    )
    now, index = begin, 0
    while True:
        due: list[dict[str, Any]] = []
        while index < len(events) and _event_time(events[index]) <= now:
            due.append(events[index])
            index += 1
        if due:
            stored = ingest_events(engine, due, now=now, settings=settings)
            warnings += [
                f"event {_event_label(due[r.index])} was rejected: {r.reason} ({r.detail})"
                for r in stored.rejected
            ]
            if any(_is_catalogue(event) for event in due):  # as the segments flow does
                fan_out_catalogue_events(engine, now=now)
        runner.run(now)
        upcoming = [t for t in (runner.next_wake(), _next_event(events, index)) if t is not None]
        if not upcoming:
            break
        following = max(min(upcoming), now + _MIN_TICK)
        if following > end:
            break
        now = following
    result = _report(engine, journey, begin, end, settings, templates)
    result["warnings"] = warnings
    return result


def _is_catalogue(event: Mapping[str, Any]) -> bool:
    return event.get("customer_id") == CATALOGUE_CUSTOMER_ID and event.get("name") in (
        CATALOGUE_EVENTS
    )


def _event_label(event: Mapping[str, Any]) -> str:
    event_id = event.get("id")
    return f'"{event_id}"' if isinstance(event_id, str | int) else "(without an id)"


def _unknown_in(events: Iterable[dict[str, Any]]) -> UnknownKeys:
    found = UnknownKeys()
    for index, event in enumerate(events, 1):
        if keys := unknown_keys(event, EVENT_KEYS):
            found.add(index, keys)
    return found


def _warn_unknown(warnings: list[str], what: str, unknown: UnknownKeys) -> None:
    if unknown.lines:
        counts = ", ".join(f"{key} on {n}" for key, n in sorted(unknown.per_key.items()))
        warnings.append(
            f"{what}: {unknown.lines} records have keys omni-journey does not read "
            f"({counts}): replayed without them (docs/data-formats.md)"
        )


def _outside(events: Sequence[dict[str, Any]], begin: datetime, end: datetime) -> list[str]:
    """A warning for the events before the window and one for those after it."""
    found = []
    before = [e for e in events if _event_time(e) < begin]
    after = [e for e in events if _event_time(e) > end]
    for group, where, what in (
        (before, f"before the start {_iso(begin)}", "loaded as history when the replay starts"),
        (after, f"after the end {_iso(end)}", "not replayed (leave --days out to cover them)"),
    ):
        if group:
            named = ", ".join(_event_label(e) for e in group[:_NAMED])
            more = f" and {len(group) - _NAMED} more" if len(group) > _NAMED else ""
            count = f"{len(group)} events are" if len(group) > 1 else "1 event is"
            found.append(f"{count} {where}: {named}{more}; {what}")
    return found


def _rejected_lines(path: Path | None) -> list[str]:
    """What the customers file's rejects say (the file goes with the throw-away store)."""
    if path is None or not path.is_file():
        return []
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    shown = [f"customers file line {e['line']}: {e['reason']} ({e['detail']})" for e in lines]
    more = [f"customers file: {len(shown) - _NAMED} more lines rejected"]
    return shown[:_NAMED] + (more if len(shown) > _NAMED else [])


def _first_day(events: Sequence[dict[str, Any]]) -> datetime:
    """Midnight of the first event's day (in that event's offset): the default start.

    Never the clock: the same files must give the same replay on any day they are
    simulated, so without events the start has to be given."""
    if not events:
        raise ConfigError(
            "--start",
            "no events with a valid time to take the start of the replay from",
            "pass --start (ISO 8601)",
        )
    return _event_time(events[0]).replace(hour=0, minute=0, second=0, microsecond=0)


def _next_event(events: Sequence[dict[str, Any]], index: int) -> datetime | None:
    return _event_time(events[index]) if index < len(events) else None


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _report(
    engine: Engine,
    journey: JourneySpec,
    begin: datetime,
    end: datetime,
    settings: Settings,
    templates: Path,
) -> dict[str, Any]:
    key = journey.key
    with engine.connect() as connection:
        version = connection.execute(
            select(JOURNEY_VERSIONS.c.spec_hash)
            .where(JOURNEY_VERSIONS.c.journey_key == key)
            .order_by(JOURNEY_VERSIONS.c.version.desc())
            .limit(1)
        ).scalar_one_or_none()
        log = connection.execute(
            select(JOURNEY_LOG)
            .where(and_(JOURNEY_LOG.c.journey_key == key, JOURNEY_LOG.c.at <= end))
            .order_by(JOURNEY_LOG.c.at, JOURNEY_LOG.c.id)
        ).all()
        sends = connection.execute(
            select(MESSAGES)
            .where(and_(MESSAGES.c.journey_key == key, MESSAGES.c.channel != "webhook"))
            .order_by(MESSAGES.c.send_after, MESSAGES.c.id)
        ).all()
        sends = [row for row in sends if row.send_after <= end]
        failed = render_sends(connection, sends, templates, settings)
    steps: dict[str, Counter[str]] = defaultdict(Counter)
    result: dict[str, Any] = {
        "journey": key,
        "version": version,
        "from": _iso(begin),
        "to": _iso(end),
        "entered": [],
        "sends": [],
        "skips": [],
        "conversions": [],
        "exits": [],
    }
    for row in log:
        if row.kind == "entered":
            result["entered"].append(
                {"customer_id": row.customer_id, "at": _iso(row.at), "holdout": row.holdout}
            )
        elif row.kind == "step" and row.step_id:
            steps[row.step_id]["entered"] += 1
        elif row.kind == "skipped":
            result["skips"].append(
                {
                    "customer_id": row.customer_id,
                    "at": _iso(row.at),
                    "step": row.step_id,
                    "reason": row.reason,
                }
            )
            if row.step_id:
                steps[row.step_id]["skipped"] += 1
        elif row.kind == "converted":
            result["conversions"].append(
                {
                    "customer_id": row.customer_id,
                    "at": _iso(row.at),
                    "event_id": row.event_id,
                    "holdout": row.holdout,
                    "last_step": row.step_id,
                }
            )
        elif row.kind == "exited":
            result["exits"].append(
                {"customer_id": row.customer_id, "at": _iso(row.at), "reason": row.reason}
            )
    for row in sends:
        if row.id in failed:  # dispatch would fail it: the customer gets nothing
            result["skips"].append(
                {
                    "customer_id": row.customer_id,
                    "at": _iso(row.send_after),
                    "step": row.step_id,
                    "reason": failed[row.id]["reason"],
                    "detail": failed[row.id]["detail"],
                }
            )
            steps[row.step_id]["skipped"] += 1
            continue
        result["sends"].append(
            {
                "customer_id": row.customer_id,
                "at": _iso(row.send_after),
                "step": row.step_id,
                "channel": row.channel,
                "message": row.message_key,
                "reason": (row.decision or {}).get("reason", ""),
            }
        )
        steps[row.step_id]["sent"] += 1
    result["skips"].sort(key=lambda skip: skip["at"])  # stable: log order within a time
    result["steps"] = {
        step.id: {
            "entered": steps[step.id]["entered"],
            "sent": steps[step.id]["sent"],
            "skipped": steps[step.id]["skipped"],
        }
        for step in journey.steps
    }
    return result
