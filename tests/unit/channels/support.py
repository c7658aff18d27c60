"""In-memory histories and small models for channel tests (no store)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from omni_journey.channels.features import BEHAVIOURS, CHANNELS, STATS, WINDOWS, History

AS_OF = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


def history(
    n: int,
    *,
    counts: Mapping[tuple[int, str, str], float] | None = None,
    attributes: Sequence[Mapping[str, Any]] | None = None,
    hours: np.ndarray | None = None,
    timezones: Sequence[str] | None = None,
    as_of: datetime = AS_OF,
) -> History:
    """A history of ``n`` customers; ``counts[(row, channel, stat)]`` sets a 180-day
    count (and the shorter windows to the same value)."""
    data = np.zeros((n, len(CHANNELS), len(STATS), len(WINDOWS)))
    for (row, channel, stat), value in (counts or {}).items():
        data[row, CHANNELS.index(channel), STATS.index(stat), :] = value
    return History(
        customer_ids=tuple(f"c-{i}" for i in range(n)),
        as_of=as_of,
        counts=data,
        last_engaged=np.full((n, len(CHANNELS)), np.nan),
        last_sent=np.full((n, len(CHANNELS)), np.nan),
        behaviour=np.zeros((n, len(BEHAVIOURS), len(WINDOWS))),
        last_order=np.full(n, np.nan),
        revenue=np.zeros(n),
        hours=np.zeros((n, 24)) if hours is None else hours,
        timezones=tuple(timezones or ["UTC"] * n),
        attributes=tuple(attributes or [{}] * n),
        has_push_token=np.zeros(n, dtype=bool),
        local_hour=np.full(n, 10.0),
    )


def constant_model(
    p_convert: Mapping[str, float],
    *,
    version: str = "test-model",
    trained: Sequence[str] | None = None,
) -> Any:
    """A model whose conversion probability per channel ignores the customer."""
    from omni_journey.channels.design import FeatureSpec, feature_names
    from omni_journey.channels.model import ChannelModel, Head

    spec = FeatureSpec(messages=(), attributes=(), rates=((0.1, 0.05, 0.1, 0.01),) * 4)
    names = feature_names(spec)
    d = len(names)
    k = len(CHANNELS)

    def head(bias: np.ndarray) -> Head:
        return Head(
            columns=np.arange(d),
            mean=np.zeros(d),
            scale=np.ones(d),
            weights=np.zeros((k, d)),
            bias=bias,
            calibration=np.array([1.0, 0.0]),
        )

    p = np.array([p_convert.get(c, 0.01) for c in CHANNELS])
    allowed = set(trained if trained is not None else CHANNELS)
    return ChannelModel(
        version=version,
        spec=spec,
        names=tuple(names),
        heads={"click": head(np.log(p / (1 - p))), "order": head(np.full(k, 30.0))},
        trained=tuple(c in allowed for c in CHANNELS),
        population_hours=np.full(24, 1 / 24),
        card={"version": version, "trained_at": AS_OF.isoformat(), "metrics": {}},
    )
