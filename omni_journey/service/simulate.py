"""Time-travel dry run: replay a journey over N days, with the production code.

A throw-away SQLite store receives the customers, then the events in time order; at
each moment something can happen (an event arrives, a wait comes due) the same
:class:`JourneyRunner` that production uses runs a pass with ``now`` set to that moment.
Nothing is sent: sends stay in the simulated outbox and are reported.

The replay is deterministic: the same files, journey and code give the same JSON on
any machine and day, whatever ``PYTHONHASHSEED``. Time is only ever the simulated
``now`` (the start comes from the events or ``--start``, never from the clock), and the
report reads the store in a fixed order.
"""

from __future__ import annotations

import tempfile
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, select

from omni_journey.errors import ConfigError
from omni_journey.ingest.intake import import_file, ingest_events
from omni_journey.ingest.readers import read_records
from omni_journey.runner.passes import JourneyRunner
from omni_journey.settings import Settings
from omni_journey.spec.models import FrequencyCap, JourneySpec, SegmentSpec
from omni_journey.store import open_store
from omni_journey.store.core import JOURNEY_LOG, JOURNEY_VERSIONS, MESSAGES

__all__ = ["simulate"]

_MIN_TICK = timedelta(seconds=1)


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
    days: int,
    settings: Settings,
    start: datetime | None = None,
    global_cap: FrequencyCap | None = None,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Replay ``journey`` over ``days`` and return the CONTRACT's ``simulate --json`` object."""
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
            )
        finally:
            engine.dispose()


def _simulate(
    engine: Engine,
    journey: JourneySpec,
    segments: Mapping[str, SegmentSpec],
    customers_file: Path,
    events_file: Path,
    days: int,
    settings: Settings,
    start: datetime | None,
    global_cap: FrequencyCap | None,
) -> dict[str, Any]:
    events = [r for r in read_records(events_file) if _parse_at(r.get("at")) is not None]
    events.sort(key=_event_time)
    begin = start or _first_day(events)
    end = begin + timedelta(days=days)
    import_file(engine, customers_file, "customers", settings=settings, now=begin)
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
            ingest_events(engine, due, now=now, settings=settings)
        runner.run(now)
        upcoming = [t for t in (runner.next_wake(), _next_event(events, index)) if t is not None]
        if not upcoming:
            break
        following = max(min(upcoming), now + _MIN_TICK)
        if following > end:
            break
        now = following
    return _report(engine, journey, begin, end)


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


def _report(engine: Engine, journey: JourneySpec, begin: datetime, end: datetime) -> dict[str, Any]:
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
        if row.send_after > end:
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
    result["steps"] = {
        step.id: {
            "entered": steps[step.id]["entered"],
            "sent": steps[step.id]["sent"],
            "skipped": steps[step.id]["skipped"],
        }
        for step in journey.steps
    }
    return result
