"""``purchase-cycles``: predict replenishment windows and emit the reminders due.

One ``predict-purchase-cycles`` task runs
:func:`omni_journey.cycles.daily.run_purchase_cycles` (one transaction:
fit category priors, predict each customer's next purchase, store the schedule, emit
``purchase_cycle.due`` events). The flow then announces the stored events to Prefect,
so the replenishment journey starts within seconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from sqlalchemy import Engine

from flows._artifacts import markdown_table, publish_summary, publish_table
from flows._common import resolve_now, retry_transient, run_name, stamp
from omni_journey.cycles.daily import PurchaseCycleReport, run_purchase_cycles
from omni_journey.ingest.announce import announce_stored, last_event_seq
from omni_journey.settings import get_settings
from omni_journey.store import open_store

__all__ = ["predict_purchase_cycles", "purchase_cycles"]


@task(
    name="predict-purchase-cycles",
    retries=2,
    retry_delay_seconds=[10, 60],
    retry_condition_fn=retry_transient,
    timeout_seconds=3 * 3600,
    cache_policy=NO_CACHE,
)
def predict_purchase_cycles(engine: Engine, now: datetime) -> PurchaseCycleReport:
    report = run_purchase_cycles(engine, now=now)
    get_run_logger().info(
        "%d histories of %d customers: %d regular, %d scheduled, %d due now, "
        "%d cancelled by a purchase, %d expired",
        report.series,
        report.customers,
        report.regular,
        report.scheduled,
        report.emitted,
        report.cancelled,
        report.expired,
    )
    return report


@flow(name="purchase-cycles", flow_run_name=run_name("purchase-cycles"), timeout_seconds=4 * 3600)
def purchase_cycles(now: datetime | None = None) -> dict[str, Any]:
    """Predict purchase cycles as of ``now`` and emit ``purchase_cycle.due`` for the
    reminders that are due; returns the run's report."""
    at = resolve_now(now)
    settings = get_settings()
    engine = open_store(settings.resolved_database_url)
    try:
        with engine.connect() as connection:
            before = last_event_seq(connection)
        report = predict_purchase_cycles(engine, at)
        stored, _ = announce_stored(
            engine, received_at=at, after_seq=before, source="purchase-cycles"
        )
    finally:
        engine.dispose()
    data = report.as_dict()
    when = stamp(at)
    categories = [{"category": key, **values} for key, values in data["categories"].items()]
    publish_table(
        categories,
        key=("purchase-cycles",),
        description=f"Category purchase intervals at {when} (typical and median days)",
    )
    counts = [{k: v for k, v in data.items() if k != "categories"}]
    publish_summary(
        "\n".join([f"# Purchase cycles at {when} UTC", "", markdown_table(counts)]),
        key=("purchase-cycles", "summary"),
        description=when,
    )
    get_run_logger().info("stored events: %s", stored or "none")
    return data


if __name__ == "__main__":
    purchase_cycles()
