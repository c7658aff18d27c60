"""``ingest``: import a JSON Lines or CSV file of events or customer profiles.

One ``import-file`` task streams the file through
:func:`omni_journey.ingest.intake.import_file` in batches of ``OMNI_BATCH_SIZE``
(progress artifact per batch); for events, one ``announce-ingested`` task then counts
what this import stored per event name and emits **one Prefect event per event
name** (``omni.events.ingested`` on ``omni.event.<name>`` with its ``count``), which
the journeys' deployment triggers turn into ``advance`` runs.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from sqlalchemy import Engine

from flows._artifacts import Progress, markdown_table, publish_summary, publish_table
from flows._common import resolve_now, retry_transient, run_name, stamp, tag_flow_run
from omni_journey.ingest.announce import announce_stored, last_event_seq
from omni_journey.ingest.intake import ImportResult, import_file
from omni_journey.settings import Settings, get_settings
from omni_journey.store import open_store

__all__ = ["announce_ingested", "import_task", "ingest"]


@task(
    name="import-file",
    task_run_name="import-{kind}-{label}",
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=retry_transient,
    timeout_seconds=6 * 3600,
    cache_policy=NO_CACHE,
)
def import_task(
    engine: Engine,
    settings: Settings,
    path: Path,
    kind: Literal["events", "customers"],
    *,
    label: str,
    now: datetime,
    file_format: str | None,
) -> ImportResult:
    """Import the whole file (each batch its own transaction; re-running is idempotent:
    duplicates are counted, never stored twice)."""
    size = max(path.stat().st_size, 1)
    progress = Progress(f"Importing {label}")
    result = import_file(
        engine,
        path,
        kind,
        settings=settings,
        now=now,
        progress=lambda read: progress.update(read, size),
        file_format=file_format,
    )
    progress.update(size, size)
    get_run_logger().info(
        "%s: %d accepted, %d duplicates, %d rejected",
        label,
        result.accepted,
        result.duplicates,
        result.rejected,
    )
    return result


@task(name="announce-ingested", cache_policy=NO_CACHE)
def announce_ingested(
    engine: Engine, *, received_at: datetime, after_seq: int, source: str
) -> dict[str, int]:
    """Emit one Prefect event per event name stored by this run (a no-op without a
    Prefect API); returns {event name: count}."""
    counts, emitted = announce_stored(
        engine, received_at=received_at, after_seq=after_seq, source=source
    )
    get_run_logger().info(
        "stored %d events under %d names; announced %d Prefect events",
        sum(counts.values()),
        len(counts),
        emitted,
    )
    return counts


@flow(name="ingest", flow_run_name=run_name("ingest", "kind", default="events"))
def ingest(
    path: str,
    kind: Literal["events", "customers"] = "events",
    file_format: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Import ``path`` (``events`` or ``customers``; format from the extension unless
    ``file_format`` is ``jsonl`` or ``csv``), stamped as received at ``now``."""
    at = resolve_now(now)
    settings = get_settings()
    source = Path(path)
    label = source.name
    engine = open_store(settings.resolved_database_url)
    try:
        with engine.connect() as connection:
            before = last_event_seq(connection)
        tag_flow_run([f"ingest:{kind}"])
        result = import_task(
            engine, settings, source, kind, label=label, now=at, file_format=file_format
        )
        counts: dict[str, int] = {}
        if kind == "events" and result.accepted:
            counts = announce_ingested(engine, received_at=at, after_seq=before, source="ingest")
    finally:
        engine.dispose()
    when = stamp(at)
    if counts:
        publish_table(
            [{"event": name, "stored": n} for name, n in sorted(counts.items())],
            key=("ingest", "events"),
            description=f"Events stored by {label} at {when}, per name",
        )
    summary = [
        {
            "file": label,
            "kind": kind,
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "rejected": result.rejected,
        }
    ]
    lines = [f"# Import of {label} at {when} UTC", "", markdown_table(summary)]
    if result.rejects_path is not None:
        lines += ["", f"Rejected lines, with reasons: `{result.rejects_path.name}` in rejects/"]
    publish_summary("\n".join(lines), key=("ingest", kind, "summary"), description=label)
    return {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": result.rejected,
        "rejects_path": str(result.rejects_path) if result.rejects_path else None,
        "events": counts,
    }


if __name__ == "__main__":
    import sys

    ingest(sys.argv[1])
