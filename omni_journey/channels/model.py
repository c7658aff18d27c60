"""The channel model: per channel, the calibrated probability that a send converts.

A send converts through its link: ``p(convert | x, c) = p(click | x, c) *
p(order within the window | click, x, c)``. Two heads, each one logistic regression
over the logged sends with a shared weight vector and a per-channel deviation from it
(columns ``x``, ``x * [channel == c]``, ``[channel == c]``): channels with little data
borrow strength from the others, channels with much data get their own weights.

Why two heads rather than one on "ordered after the send": most orders after a send
would have happened anyway (organic buying, the same whatever the channel); modelled
directly, that noise drowns the differences between channels. Clicks happen only
because of the message and are several times more frequent than conversions, so the
click head learns each customer's channel affinity from far fewer sends; the order
head, fitted on clicked sends, says how well a click turns into an order. Orders with
no click (view-through) are not credited to a channel: the model is conservative
there, and ``omni-journey evaluate`` scores policies on all orders.

Each head is recalibrated with Platt scaling fitted on out-of-fold predictions (folds
by customer); the card reports out-of-fold metrics (log loss, Brier, AUC, expected
calibration error) overall and per channel. Scoring is one matrix product per channel
and head.

Only fitting needs scikit-learn, and imports it when it fits: loading and scoring a
model (every journey pass with ``OMNI_CHANNEL_POLICY=learned``) need numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from omni_journey.channels.design import (
    FeatureSpec,
    candidate_rows,
    design_parts,
    feature_names,
)
from omni_journey.channels.features import CHANNELS, FloatArray, History
from omni_journey.errors import OmniJourneyError

if TYPE_CHECKING:
    from sklearn.linear_model import LogisticRegression

__all__ = ["HEADS", "ChannelModel", "ChannelModelError", "Head", "TrainingSet", "fit_model"]

IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
MODEL_KIND = "click-order-logistic-v1"
HEADS: tuple[str, ...] = ("click", "order")
_MIN_ROWS_PER_CHANNEL = 100
# per head: inverse regularisation strength, and how much a channel may deviate from
# the shared weights (deviation columns are scaled down: a stronger penalty on them)
_C = {"click": 0.03, "order": 0.02}
_DEVIATION_SCALE = {"click": 0.3, "order": 0.0}
# the order head sees few rows (clicked sends): it reads only these columns
_ORDER_COLUMNS = ("attr_", "message=", "orders_", "revenue_", "last_order", "never_ordered")


class ChannelModelError(OmniJourneyError, RuntimeError):
    """A channel model cannot be trained, loaded or used. ``version`` may be ``None``."""

    def __init__(self, version: str | None, problem: str) -> None:
        self.version = version
        self.problem = problem
        where = f"channel model {version}" if version else "channel model"
        super().__init__(f"{where}: {problem}")


@dataclass
class TrainingSet:
    """Logged sends: who, which message, on which channel, and what came of it."""

    history: History  # one row per send, as of the send's day
    messages: Sequence[str]
    channel: IntArray
    clicked: BoolArray
    converted: BoolArray
    groups: Sequence[str]  # customer ids: folds never split a customer


def _sigmoid(x: FloatArray) -> FloatArray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -35, 35))))


@dataclass
class Head:
    """One calibrated block-logistic over design ``columns``:
    ``p_c = sigmoid(a * (z . w_c + b_c) + a0)`` with ``z`` the standardised columns."""

    columns: IntArray
    mean: FloatArray
    scale: FloatArray
    weights: FloatArray  # (channels, len(columns))
    bias: FloatArray  # (channels,)
    calibration: FloatArray  # (2,): slope, intercept

    def _z(self, block: FloatArray) -> FloatArray:
        return (block[:, self.columns] - self.mean) / self.scale

    def predict(
        self, shared: FloatArray, own: Sequence[FloatArray], channels: Sequence[bool]
    ) -> FloatArray:
        """(n, channels) probabilities from :func:`design_parts`; ``nan`` where
        ``channels`` is False. Standardisation is folded into the weights: one matrix
        product per channel, no copy of the design."""
        s = shared.shape[1]
        d = s + own[0].shape[1]
        out = np.full((len(shared), len(CHANNELS)), np.nan)
        for c, block in enumerate(own):
            if not channels[c]:
                continue
            w = np.zeros(d)
            w[self.columns] = self.weights[c] / self.scale
            b = self.bias[c] - float((self.mean / self.scale) @ self.weights[c])
            logit = shared @ w[:s] + block @ w[s:] + b
            out[:, c] = _sigmoid(self.calibration[0] * logit + self.calibration[1])
        return out

    def predict_rows(self, z: FloatArray, channel: IntArray) -> FloatArray:
        """Calibrated probabilities of design rows ``z``, each on its own channel."""
        logit = (self._z(z) * self.weights[channel]).sum(axis=1) + self.bias[channel]
        return _sigmoid(self.calibration[0] * logit + self.calibration[1])

    def arrays(self, prefix: str) -> dict[str, FloatArray]:
        return {f"{prefix}_{name}": getattr(self, name) for name in Head.__dataclass_fields__}


@dataclass
class ChannelModel:
    """A fitted model; :meth:`predict` gives ``p(click) * p(order | click)``."""

    version: str
    spec: FeatureSpec
    names: tuple[str, ...]
    heads: dict[str, Head]
    trained: tuple[bool, ...]  # per channel: enough logged sends to trust its score
    population_hours: FloatArray  # (24,) engagement by local hour, all customers
    card: dict[str, Any] = field(default_factory=dict)

    def predict(self, history: History, messages: Sequence[str]) -> FloatArray:
        """(n, channels) conversion probabilities; ``nan`` for untrained channels."""
        shared, own = design_parts(history, messages, self.spec)
        click = self.heads["click"].predict(shared, own, self.trained)
        order = self.heads["order"].predict(shared, own, self.trained)
        return np.asarray(click * order)

    @property
    def data_until(self) -> datetime | None:
        """The newest decision the model was trained on (from its card)."""
        value = self.card.get("data", {}).get("until")
        return datetime.fromisoformat(value) if value else None


def _design(z: FloatArray, channel: IntArray, deviation: float) -> FloatArray:
    """Columns: shared ``z``, per-channel intercepts, and (``deviation`` > 0) each
    channel's deviation from the shared weights, scaled by ``deviation``."""
    n, d = z.shape
    k = len(CHANNELS)
    onehot = np.zeros((n, k))
    onehot[np.arange(n), channel] = 1.0
    if deviation <= 0:
        return np.column_stack([z, onehot])
    deviations = (onehot[:, :, None] * z[:, None, :]).reshape(n, k * d) * deviation
    return np.column_stack([z, onehot, deviations])


def _logistic(x: FloatArray, y: BoolArray, c: float) -> LogisticRegression:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=500, tol=1e-4).fit(x, y.astype(int))


def metrics(y: BoolArray, p: FloatArray) -> dict[str, float | None]:
    """Log loss, Brier score, AUC and expected calibration error (10 quantile bins)."""
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    if len(y) == 0:
        return {"rows": 0.0}
    both = bool(y.any() and (~y).any())
    bins = np.array_split(np.argsort(p), 10)
    ece = sum(len(b) * abs(float(p[b].mean() - y[b].mean())) for b in bins if len(b)) / len(p)
    return {
        "rows": float(len(y)),
        "positives": float(y.sum()),
        "base_rate": float(y.mean()),
        "mean_prediction": float(p.mean()),
        "log_loss": float(log_loss(y, np.clip(p, 1e-9, 1 - 1e-9), labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "auc": float(roc_auc_score(y, p)) if both else None,
        "ece": float(ece),
    }


def _fit_head(
    z_all: FloatArray,
    columns: IntArray,
    channel: IntArray,
    y: BoolArray,
    groups: Sequence[str],
    *,
    c: float,
    deviation: float,
    folds: int,
) -> tuple[Head, FloatArray]:
    """Fit one head; return it and its calibrated out-of-fold predictions."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    k = len(CHANNELS)
    z = z_all[:, columns]
    d = z.shape[1]
    mean = z.mean(axis=0)
    scale = z.std(axis=0)
    scale = np.where(scale < 1e-9, 1.0, scale)
    if not y.any() or y.all():  # nothing to learn: a constant at the observed rate
        rate = (float(y.sum()) + 0.5) / (len(y) + 1.0)
        constant = np.log(rate / (1 - rate))
        head = Head(
            columns, mean, scale, np.zeros((k, d)), np.full(k, constant), np.array([1.0, 0.0])
        )
        return head, np.full(len(y), rate)
    x = _design((z - mean) / scale, channel, deviation)
    oof = np.zeros(len(y))
    splits = min(folds, len(set(groups)))
    if splits >= 2:
        for train, test in GroupKFold(n_splits=splits).split(x, y, np.asarray(groups)):
            if y[train].any() and not y[train].all():
                oof[test] = _logistic(x[train], y[train], c).decision_function(x[test])
            else:
                oof[test] = -10.0 if not y[train].any() else 10.0
        platt = LogisticRegression(C=1e6, max_iter=1000).fit(oof[:, None], y.astype(int))
        slope, intercept = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    else:
        slope, intercept = 1.0, 0.0
    final = _logistic(x, y, c)
    w = final.coef_[0]
    weights = np.repeat(w[:d][None, :], k, axis=0)
    if deviation > 0:
        weights = weights + deviation * w[d + k :].reshape(k, d)
    bias = final.intercept_[0] + w[d : d + k]
    head = Head(columns, mean, scale, weights, bias, np.array([slope, intercept]))
    return head, _sigmoid(slope * oof + intercept)


def fit_model(
    data: TrainingSet, *, version: str, trained_at: datetime, folds: int = 3
) -> ChannelModel:
    """Fit, calibrate and describe a model. :class:`ChannelModelError` when the data
    cannot support one (no clicks at all)."""
    clicked = np.asarray(data.clicked, dtype=bool)
    converted = np.asarray(data.converted, dtype=bool)
    if len(clicked) == 0 or not clicked.any():
        raise ChannelModelError(None, "the logged sends have no clicks to learn from")
    spec = FeatureSpec.fit(data.history, data.messages)
    blocks = candidate_rows(data.history, data.messages, spec)
    n = len(clicked)
    z = np.stack(blocks)[data.channel, np.arange(n)]
    names = feature_names(spec)
    everything = np.arange(z.shape[1])
    click, p_click = _fit_head(
        z,
        everything,
        data.channel,
        clicked,
        data.groups,
        c=_C["click"],
        deviation=_DEVIATION_SCALE["click"],
        folds=folds,
    )
    rows = np.flatnonzero(clicked)
    order_columns = np.array([i for i, n in enumerate(names) if n.startswith(_ORDER_COLUMNS)])
    order, p_order = _fit_head(
        z[rows],
        order_columns,
        data.channel[rows],
        converted[rows],
        [data.groups[i] for i in rows.tolist()],
        c=_C["order"],
        deviation=_DEVIATION_SCALE["order"],
        folds=folds,
    )
    k = len(CHANNELS)
    counts = np.bincount(data.channel, minlength=k)
    trained = tuple(bool(r >= _MIN_ROWS_PER_CHANNEL) for r in counts)
    through = clicked & converted
    p_order_all = order.predict_rows(z, data.channel)
    p_order_all[rows] = p_order  # out of fold where the head saw the row
    product = p_click * p_order_all
    report: dict[str, Any] = {
        "click": metrics(clicked, p_click),
        "order_given_click": metrics(converted[rows], p_order),
        "converted_through_click": metrics(through, product),
        "channels": {
            CHANNELS[ch]: metrics(clicked[data.channel == ch], p_click[data.channel == ch])
            for ch in range(k)
            if (data.channel == ch).any()
        },
    }
    hours = data.history.hours.sum(axis=0)
    card = {
        "version": version,
        "kind": MODEL_KIND,
        "target": "p(click) * p(order.completed within the attribution window | click)",
        "trained_at": trained_at.isoformat(),
        "features": names,
        "feature_version": spec.version,
        "channels": list(CHANNELS),
        "trained_channels": [CHANNELS[i] for i in range(k) if trained[i]],
        "regularisation_c": dict(_C),
        "deviation_scale": dict(_DEVIATION_SCALE),
        "calibration": "platt on out-of-fold predictions, per head",
        "metrics": report,
        "rows_per_channel": {CHANNELS[i]: int(counts[i]) for i in range(k)},
    }
    return ChannelModel(
        version=version,
        spec=spec,
        names=tuple(names),
        heads={"click": click, "order": order},
        trained=trained,
        population_hours=hours / max(float(hours.sum()), 1.0),
        card=card,
    )
