"""``omni-journey train``: fit the channel model from logged decisions and register it.

Reads the sent decisions of the last ``days`` whose attribution window has closed,
their outcomes (:mod:`omni_journey.channels.logged`) and their contexts, fits
:func:`~omni_journey.channels.model.fit_model`, writes the artefact under
``<OMNI_HOME>/models/<version>/`` and registers it as the active model. With fewer than
``min_conversions`` converted decisions it fits nothing and says so: the policy keeps
the rule (and keeps exploring, so data accrues).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, select

from omni_journey.channels.artefacts import CHANNEL_MODELS, register_model, save_model
from omni_journey.channels.logged import LoggedDecisions, load_logged
from omni_journey.channels.model import ChannelModel, ChannelModelError, fit_model

__all__ = ["TrainResult", "train_from_logged", "train_from_store"]


@dataclass
class TrainResult:
    """What ``train`` did: a model, or the reason there is none."""

    model: ChannelModel | None
    decisions: int
    conversions: int
    reason: str | None = None
    path: Path | None = None


def train_from_logged(
    logged: LoggedDecisions, *, version: str, now: datetime, min_conversions: int = 50
) -> TrainResult:
    """Fit a model on ``logged`` (no store access); ``reason`` says why not."""
    conversions = int(logged.converted.sum())
    if conversions < min_conversions:
        return TrainResult(
            None,
            len(logged),
            conversions,
            f"not enough data: {conversions} converted decisions of {len(logged)} "
            f"(need {min_conversions}); the rule keeps deciding",
        )
    try:
        model = fit_model(logged.training_set(), version=version, trained_at=now)
    except ChannelModelError as error:
        return TrainResult(None, len(logged), conversions, str(error))
    model.card["data"] = {
        "from": min(logged.created_at).isoformat(),
        "until": max(logged.created_at).isoformat(),
        "decisions": len(logged),
        "conversions": conversions,
        "clicks": int(logged.clicked.sum()),
        "policies": dict(Counter(logged.policy)),
    }
    return TrainResult(model, len(logged), conversions)


def train_from_store(
    engine: Engine,
    *,
    models_dir: Path,
    now: datetime,
    days: int = 180,
    attribution_hours: float = 72.0,
    min_conversions: int = 50,
    activate: bool = True,
) -> TrainResult:
    """Train on the store's logged decisions, save the artefact and register it."""
    with engine.connect() as connection:
        logged = load_logged(
            connection,
            since=now - timedelta(days=days),
            until=now,
            attribution_hours=attribution_hours,
        )
        taken = set(connection.execute(select(CHANNEL_MODELS.c.version)).scalars())
    base = f"cm-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    version = base
    suffix = 1
    while version in taken:
        suffix += 1
        version = f"{base}-{suffix}"
    result = train_from_logged(logged, version=version, now=now, min_conversions=min_conversions)
    if result.model is None:
        return result
    path, digest = save_model(result.model, models_dir)
    with engine.begin() as connection:
        register_model(connection, result.model, path, digest, activate=activate)
    result.path = models_dir / path
    return result
