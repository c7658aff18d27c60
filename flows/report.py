"""``report``: the HTML report, and the same figures as Prefect artifacts.

One ``build-report`` task gathers every figure from the store (funnels, conversions and
holdout lift, channel mix, delivery and suppression, the channel policy vs baselines);
one ``render-report`` task writes ``index.html`` and its PNG charts. The flow then
publishes each of the report's tables as a table artifact (``report-funnel-<journey>``,
``report-lift``, ``report-channel-mix``, ``report-delivery``, ``report-suppressions``,
``report-policy``) and the whole report as a markdown artifact (``report-summary``):
the numbers in the UI are the numbers on the page. Counts only.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from sqlalchemy import Engine

from flows._artifacts import publish_summary, publish_table
from flows._common import resolve_now, retry_transient, run_name, stamp
from omni_journey.analytics import (
    Report,
    ReportOptions,
    build_report,
    render_report,
    report_markdown,
    report_summary,
    report_tables,
)
from omni_journey.settings import get_settings
from omni_journey.store import open_store

__all__ = ["gather_report", "report", "write_report_page"]


@task(
    name="build-report",
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=retry_transient,
    timeout_seconds=1800,
    cache_policy=NO_CACHE,
)
def gather_report(
    engine: Engine,
    *,
    now: datetime,
    since: datetime | None,
    journeys: list[str] | None,
    options: ReportOptions,
) -> Report:
    with engine.connect() as connection:
        return build_report(connection, now=now, journeys=journeys, since=since, options=options)


@task(name="render-report", timeout_seconds=600, cache_policy=NO_CACHE)
def write_report_page(figures: Report, out: Path) -> Path:
    return render_report(figures, out)


@flow(name="report", flow_run_name=run_name("report"), timeout_seconds=3600)
def report(
    out: str | None = None,
    since: datetime | None = None,
    now: datetime | None = None,
    journeys: list[str] | None = None,
    bucket: str = "day",
    policy: bool = True,
) -> dict[str, Any]:
    """Write the report for ``[since, now)`` (default: all history up to the clock) to
    ``out`` (default: ``OMNI_HOME/report``) and publish its tables as artifacts.
    Returns the page's path and the plain tables."""
    logger = get_run_logger()
    at = resolve_now(now)
    start = resolve_now(since) if since is not None else None
    settings = get_settings()
    options = ReportOptions.from_settings(settings, bucket=bucket, include_policy=policy)
    engine = open_store(settings.resolved_database_url)
    try:
        figures = gather_report(engine, now=at, since=start, journeys=journeys, options=options)
    finally:
        engine.dispose()
    path = write_report_page(figures, Path(out) if out else settings.home / "report")
    tables = report_tables(figures)
    when = stamp(at)
    for name, rows in tables.items():
        publish_table(rows, key=("report", *name.split(":")), description=f"{name} at {when}")
    publish_summary(
        report_markdown(figures), key=("report", "summary"), description=f"Report at {when}"
    )
    for line in report_summary(figures):
        logger.info("%s", line)
    return {"path": str(path), "tables": tables}


if __name__ == "__main__":
    report()
