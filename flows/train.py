"""``train-channel-model``: fit the channel model on the logged decisions, nightly.

One ``train-channel-model`` task runs
:func:`omni_journey.channels.train.train_from_store`: the sent decisions of the last
``days`` whose attribution window has closed, their outcomes and contexts, a fitted
model saved under ``<OMNI_HOME>/models/<version>/`` and registered as the active one.
With too few conversions it fits nothing and says why (the rule keeps deciding).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from sqlalchemy import Engine

from flows._artifacts import markdown_table, publish_summary
from flows._common import resolve_now, retry_transient, run_name, stamp
from omni_journey.channels.train import TrainResult, train_from_store
from omni_journey.settings import get_settings
from omni_journey.store import open_store

__all__ = ["train_channel_model", "train_model"]


@task(
    name="train-channel-model",
    retries=1,
    retry_delay_seconds=[60],
    retry_condition_fn=retry_transient,
    timeout_seconds=4 * 3600,
    cache_policy=NO_CACHE,
)
def train_model(
    engine: Engine, *, models_dir: Path, now: datetime, days: int, min_conversions: int
) -> TrainResult:
    result = train_from_store(
        engine, models_dir=models_dir, now=now, days=days, min_conversions=min_conversions
    )
    logger = get_run_logger()
    if result.model is None:
        logger.info("no model: %s", result.reason)
    else:
        logger.info(
            "model %s from %d decisions (%d converted)",
            result.model.version,
            result.decisions,
            result.conversions,
        )
    return result


@flow(
    name="train-channel-model",
    flow_run_name=run_name("train-channel-model"),
    timeout_seconds=5 * 3600,
)
def train_channel_model(
    now: datetime | None = None, days: int = 180, min_conversions: int = 50
) -> dict[str, Any]:
    """Fit and activate a channel model from the last ``days`` of logged decisions."""
    at = resolve_now(now)
    settings = get_settings()
    engine = open_store(settings.resolved_database_url)
    try:
        result = train_model(
            engine,
            models_dir=settings.home / "models",
            now=at,
            days=days,
            min_conversions=min_conversions,
        )
    finally:
        engine.dispose()
    summary = {
        "version": result.model.version if result.model is not None else None,
        "decisions": result.decisions,
        "conversions": result.conversions,
        "reason": result.reason,
    }
    when = stamp(at)
    row = {k: ("" if v is None else v) for k, v in summary.items()}
    publish_summary(
        "\n".join([f"# Channel model at {when} UTC", "", markdown_table([row])]),
        key=("train-channel-model", "summary"),
        description=when,
    )
    return summary


if __name__ == "__main__":
    train_channel_model()
