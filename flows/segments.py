"""``evaluate-segments``: update segment memberships, one task per segment.

First one ``fan-out-catalogue`` task copies the last day's catalogue events (a price
drop, a product back in stock) to each customer who viewed the product. Then each
``segment-<key>`` task is one transaction of
:func:`omni_journey.segments.evaluate.evaluate_segments` (the segment's state row
locked, members computed in SQL, ``segment.entered`` / ``segment.exited`` events
stored). Then the flow announces what was stored to Prefect: one
``omni.events.ingested`` event per event name, and one ``omni.segment.entered`` per
segment that gained members, which start the journeys entered on that segment.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.logging import get_run_logger
from sqlalchemy import Engine

from flows._artifacts import Progress, markdown_table, publish_summary, publish_table
from flows._common import resolve_now, retry_transient, run_name, stamp, tag_flow_run
from omni_journey.ingest.announce import (
    announce_stored,
    emit_segment_entries,
    last_event_seq,
)
from omni_journey.segments.evaluate import Delta, evaluate_segments
from omni_journey.segments.triggers import FanOut, behavioural_segments, fan_out_catalogue_events
from omni_journey.settings import get_settings
from omni_journey.spec.models import SegmentSpec
from omni_journey.spec.project import load_project
from omni_journey.store import open_store

__all__ = ["evaluate_segment", "fan_out_catalogue", "segments_flow"]


@task(
    name="fan-out-catalogue",
    task_run_name="fan-out-catalogue",
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=retry_transient,
    timeout_seconds=1800,
    cache_policy=NO_CACHE,
)
def fan_out_catalogue(engine: Engine, *, now: datetime) -> FanOut:
    """Copy the last day's ``product.price_dropped`` / ``product.back_in_stock``
    catalogue events to every customer who viewed the product (idempotent)."""
    result = fan_out_catalogue_events(engine, now=now)
    get_run_logger().info(
        "%d catalogue events, %d customer events emitted",
        result.catalogue_events,
        result.emitted,
    )
    return result


@task(
    name="evaluate-segment",
    task_run_name="segment-{key}",
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=retry_transient,
    timeout_seconds=1800,
    cache_policy=NO_CACHE,
)
def evaluate_segment(
    engine: Engine,
    segments: Mapping[str, SegmentSpec],
    key: str,
    *,
    now: datetime,
    emit_on_first: bool,
) -> Delta:
    delta = evaluate_segments(engine, segments, now=now, keys=[key], emit_on_first=emit_on_first)[
        key
    ]
    get_run_logger().info(
        "%s: %d members, +%d entered, -%d left%s",
        key,
        delta.size,
        len(delta.entered),
        len(delta.left),
        " (first evaluation: no events)" if delta.baseline and not emit_on_first else "",
    )
    return delta


@flow(
    name="evaluate-segments",
    flow_run_name=run_name("segments", "segments"),
    timeout_seconds=3 * 3600,
)
def segments_flow(
    segments: list[str] | None = None, now: datetime | None = None, emit_on_first: bool = False
) -> dict[str, dict[str, int]]:
    """Evaluate ``segments`` (default: every segment in ``segments/``) as of ``now``.
    ``emit_on_first``: on a segment's first evaluation, emit ``segment.entered`` for
    everyone in it (off by default, so a new segment file messages nobody at once)."""
    logger = get_run_logger()
    at = resolve_now(now)
    settings = get_settings()
    project = load_project(settings.project_dir)
    if project.errors:
        logger.warning(
            "%d problems in the project: invalid segments are skipped", len(project.errors)
        )
    known = {**behavioural_segments(), **project.segments}
    keys = list(segments) if segments else sorted(project.segments)
    unknown = sorted(set(keys) - set(known))
    if unknown:
        raise ValueError(f"unknown segments: {', '.join(unknown)}")
    tag_flow_run(f"segment:{key}" for key in keys)
    engine = open_store(settings.resolved_database_url)
    deltas: dict[str, Delta] = {}
    failed: dict[str, str] = {}
    try:
        with engine.connect() as connection:
            before = last_event_seq(connection)
        fanned: FanOut = fan_out_catalogue(engine, now=at)
        progress = Progress(f"Evaluating {len(keys)} segments") if len(keys) > 1 else None
        for number, key in enumerate(keys, start=1):
            state: State[Any] = evaluate_segment(
                engine, known, key, now=at, emit_on_first=emit_on_first, return_state=True
            )
            if state.is_completed():
                deltas[key] = state.result()
            else:
                failed[key] = state.message or "failed"
            if progress is not None:
                progress.update(number, len(keys))
        stored, _ = announce_stored(engine, received_at=at, after_seq=before, source="segments")
    finally:
        engine.dispose()
    entered = {key: len(d.entered) for key, d in deltas.items() if not d.baseline or emit_on_first}
    emit_segment_entries(entered)
    rows = [
        {
            "segment": key,
            "members": d.size,
            "entered": len(d.entered),
            "left": len(d.left),
            "first_evaluation": d.baseline,
        }
        for key, d in sorted(deltas.items())
    ]
    when = stamp(at)
    publish_table(rows, key=("segments",), description=f"Segment changes at {when}")
    lines = [f"# Segments at {when} UTC", "", markdown_table(rows), ""]
    lines.append(
        f"Catalogue fan-out: {fanned.catalogue_events} catalogue events, "
        f"{fanned.emitted} customer events emitted."
    )
    lines += [f"- **{key}**: FAILED: {reason}" for key, reason in sorted(failed.items())]
    publish_summary("\n".join(lines), key=("segments", "summary"), description=when)
    logger.info("evaluated %d segments; stored events: %s", len(deltas), stored or "none")
    if failed:
        raise RuntimeError("could not evaluate " + ", ".join(sorted(failed)))
    return {
        key: {"members": d.size, "entered": len(d.entered), "left": len(d.left)}
        for key, d in sorted(deltas.items())
    }


if __name__ == "__main__":
    segments_flow()
