"""From :class:`~omni_journey.channels.features.History` to model inputs.

One row per (customer, candidate channel): customer-level columns (orders, browsing,
fatigue across channels, every channel's smoothed click and engagement rates,
attributes, the message) and the candidate channel's own columns (its sends, smoothed
open / click / engagement / conversion rates, recency, bounces). Rates are smoothed
toward the population's rate of that channel (:class:`FeatureSpec`), so a customer
with two sends is not "100% engaged".

The vocabularies (which attributes, which values, which messages) are learned at
training time and stored with the model; anything unseen maps to "other".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from omni_journey.channels.features import CHANNELS, STATS, BoolArray, FloatArray, History

__all__ = [
    "FEATURE_VERSION",
    "FeatureSpec",
    "candidate_rows",
    "design_parts",
    "feature_names",
    "machine_opener",
]

FEATURE_VERSION = "channels-features-v2"
_RATES = ("opened", "clicked", "engaged", "converted")
_PRIOR_WEIGHT = 5.0
_HOUR_PRIOR = 10.0
_MAX_ATTRIBUTE_VALUES = 12
_MIN_ATTRIBUTE_SHARE = 0.2
_OPEN_RATES = ("opened", "engaged")
_MACHINE_OPEN_RATE = 0.75
_MACHINE_OPEN_SENDS = 3
_MIN_STRENGTH, _MAX_STRENGTH = 2.0, 200.0


@dataclass(frozen=True)
class FeatureSpec:
    """What the design needs besides history: vocabularies and population rates."""

    messages: tuple[str, ...]
    attributes: tuple[tuple[str, tuple[str, ...]], ...]
    rates: tuple[tuple[float, ...], ...]  # [channel][rate in _RATES]
    hours: tuple[float, ...] = (1 / 24,) * 24  # population engagement by local hour
    version: str = FEATURE_VERSION
    # [channel][rate]: how many sends the population prior is worth (empirical Bayes);
    # empty: _PRIOR_WEIGHT everywhere
    strength: tuple[tuple[float, ...], ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "messages": list(self.messages),
            "attributes": {name: list(values) for name, values in self.attributes},
            "rates": [list(r) for r in self.rates],
            "hours": list(self.hours),
            "strength": [list(r) for r in self.strength],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureSpec:
        return cls(
            messages=tuple(data["messages"]),
            attributes=tuple((str(k), tuple(v)) for k, v in dict(data["attributes"]).items()),
            rates=tuple(tuple(float(x) for x in r) for r in data["rates"]),
            hours=tuple(float(x) for x in data["hours"]),
            version=str(data["version"]),
            strength=tuple(tuple(float(x) for x in r) for r in data.get("strength", ())),
        )

    @classmethod
    def fit(cls, history: History, messages: Sequence[str]) -> FeatureSpec:
        """Vocabularies and population rates from training histories."""
        message_counts = Counter(messages)
        vocabulary = tuple(sorted(m for m, count in message_counts.items() if count >= 20))
        attributes = []
        names = Counter(k for a in history.attributes for k in a)
        for name, present in sorted(names.items()):
            values = Counter(
                str(a[name])
                for a in history.attributes
                if name in a and isinstance(a[name], str | bool | int)
            )
            if present >= _MIN_ATTRIBUTE_SHARE * max(len(history), 1) and (
                1 < len(values) <= _MAX_ATTRIBUTE_VALUES
            ):
                attributes.append((name, tuple(sorted(values))))
        human = ~machine_opener(history)
        rates = []
        for c in range(len(CHANNELS)):
            row = []
            for rate in _RATES:
                rows = human if CHANNELS[c] == "email" and rate in _OPEN_RATES else slice(None)
                sent = history.stat("sent", 180)[rows, c].sum()
                hits = history.stat(rate, 180)[rows, c].sum()
                row.append(float((hits + 1.0) / (sent + 20.0)))
            rates.append(tuple(row))
        hours = history.hours.sum(axis=0) + 1.0
        return cls(
            messages=vocabulary,
            attributes=tuple(attributes),
            rates=tuple(rates),
            hours=tuple(float(h) for h in hours / hours.sum()),
            strength=_prior_strength(history),
        )


def machine_opener(history: History) -> BoolArray:
    """(n,) customers whose email opens say nothing: they open (nearly) every email, as
    Apple Mail Privacy Protection's prefetching does (at least ``_MACHINE_OPEN_RATE`` of
    at least ``_MACHINE_OPEN_SENDS`` emails over 180 days)."""
    email = CHANNELS.index("email")
    sent = history.stat("sent", 180)[:, email]
    opened = history.stat("opened", 180)[:, email]
    return np.asarray(
        (sent >= _MACHINE_OPEN_SENDS) & (opened >= _MACHINE_OPEN_RATE * np.maximum(sent, 1))
    )


def _prior_strength(history: History) -> tuple[tuple[float, ...], ...]:
    """Empirical Bayes (beta-binomial, method of moments): per channel and rate, how many
    sends the population's rate is worth, from how much customers' rates vary beyond what
    their numbers of sends explain. Machine openers' email opens are left out."""
    sent_all = history.stat("sent", 180)
    machine = machine_opener(history)
    out = []
    for c in range(len(CHANNELS)):
        row = []
        for rate in _RATES:
            sent, hits = sent_all[:, c], history.stat(rate, 180)[:, c]
            keep = sent >= 3
            if CHANNELS[c] == "email" and rate in _OPEN_RATES:
                keep &= ~machine
            if keep.sum() < 30:
                row.append(_PRIOR_WEIGHT)
                continue
            p = np.minimum(hits[keep] / sent[keep], 1.0)
            mean = float(p.mean())
            binomial = mean * (1 - mean) * float(np.mean(1.0 / sent[keep]))
            between = max(float(p.var()) - binomial, 1e-6)
            strength = mean * (1 - mean) / between - 1.0
            row.append(float(np.clip(strength, _MIN_STRENGTH, _MAX_STRENGTH)))
        out.append(tuple(row))
    return tuple(out)


def _log(x: FloatArray) -> FloatArray:
    return np.log1p(np.maximum(x, 0.0))


def _recency(days: FloatArray, cap: float) -> FloatArray:
    return np.where(np.isnan(days), 1.0, np.minimum(days, cap) / cap)


def _logit(p: FloatArray) -> FloatArray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def _smoothed(
    history: History, rate: str, channel: int, spec: FeatureSpec, machine: BoolArray
) -> FloatArray:
    """The customer's rate on ``channel``, shrunk toward the population's by the prior's
    strength (empirical Bayes): the posterior mean, as a logit. A machine opener's email
    opens are replaced by the prior (their clicks still count)."""
    r = _RATES.index(rate)
    sent = history.stat("sent", 180)[:, channel]
    hits = history.stat(rate, 180)[:, channel]
    prior = spec.rates[channel][r]
    weight = spec.strength[channel][r] if spec.strength else _PRIOR_WEIGHT
    if CHANNELS[channel] == "email" and rate in _OPEN_RATES:
        clicks = history.stat("clicked", 180)[:, channel]
        hits = np.where(machine, prior * sent if rate == "opened" else clicks, hits)
    return _logit((hits + weight * prior) / (sent + weight))


def _hour_engagement(history: History, spec: FeatureSpec) -> FloatArray:
    """How much the customer engages around this local hour (the hour and its two
    neighbours), shrunk toward the population, relative to an average hour (1.0)."""
    prior = np.asarray(spec.hours)
    weights = (history.hours + _HOUR_PRIOR * prior) / (
        history.hours.sum(axis=1, keepdims=True) + _HOUR_PRIOR
    )
    hour = np.floor(history.local_hour).astype(np.int64) % 24
    rows = np.arange(len(history))
    around = sum(weights[rows, (hour + d) % 24] for d in (-1, 0, 1))
    return np.asarray(np.log(np.maximum(around * 8.0, 1e-3)))


def feature_names(spec: FeatureSpec) -> list[str]:
    names = [
        "orders_30",
        "orders_180",
        "last_order_recency",
        "never_ordered",
        "views_7",
        "views_30",
        "carts_7",
        "revenue_180",
        "sent_all_7",
        "sent_all_30",
        "clicked_all_180",
        "has_push_token",
        "email_machine_opens",
        "local_hour_sin",
        "local_hour_cos",
        "hour_engagement",
    ]
    names += [f"{c}_click_rate" for c in CHANNELS] + [f"{c}_engaged_rate" for c in CHANNELS]
    names += [f"attr_{name}={value}" for name, values in spec.attributes for value in values]
    names += [f"message={m}" for m in (*spec.messages, "other")]
    names += [
        "sent_7",
        "sent_30",
        "sent_180",
        *(f"{r}_rate" for r in _RATES),
        "clicked_180",
        "converted_180",
        "engaged_recency",
        "never_engaged",
        "sent_recency",
        "bounced_180",
    ]
    return names


def _customer_columns(history: History, messages: Sequence[str], spec: FeatureSpec) -> FloatArray:
    orders = history.behaviour[:, 2]
    views = history.behaviour[:, 0]
    carts = history.behaviour[:, 1]
    sent = history.counts[:, :, STATS.index("sent")].sum(axis=1)
    clicked = history.stat("clicked", 180).sum(axis=1)
    machine = machine_opener(history)
    columns = [
        _log(orders[:, 1]),
        _log(orders[:, 2]),
        _recency(history.last_order, 365.0),
        np.isnan(history.last_order).astype(float),
        _log(views[:, 0]),
        _log(views[:, 1]),
        _log(carts[:, 0]),
        _log(history.revenue / 50.0),
        _log(sent[:, 0]),
        _log(sent[:, 1]),
        _log(clicked),
        history.has_push_token.astype(float),
        machine.astype(float),
        np.sin(2 * np.pi * history.local_hour / 24),
        np.cos(2 * np.pi * history.local_hour / 24),
        _hour_engagement(history, spec),
    ]
    columns += [_smoothed(history, "clicked", c, spec, machine) for c in range(len(CHANNELS))]
    columns += [_smoothed(history, "engaged", c, spec, machine) for c in range(len(CHANNELS))]
    for name, values in spec.attributes:
        seen = np.array([str(a[name]) if name in a else "" for a in history.attributes])
        columns += [(seen == v).astype(float) for v in values]
    known = {m: i for i, m in enumerate(spec.messages)}
    codes = np.array([known.get(m, len(spec.messages)) for m in messages])
    onehot = np.zeros((len(messages), len(spec.messages) + 1))
    onehot[np.arange(len(messages)), codes] = 1.0
    return np.column_stack([*columns, onehot])


def _channel_columns(
    history: History, channel: int, spec: FeatureSpec, machine: BoolArray
) -> FloatArray:
    sent = history.counts[:, channel, STATS.index("sent")]
    return np.column_stack(
        [
            _log(sent[:, 0]),
            _log(sent[:, 1]),
            _log(sent[:, 2]),
            *(_smoothed(history, r, channel, spec, machine) for r in _RATES),
            _log(history.stat("clicked", 180)[:, channel]),
            _log(history.stat("converted", 180)[:, channel]),
            _recency(history.last_engaged[:, channel], 180.0),
            np.isnan(history.last_engaged[:, channel]).astype(float),
            _recency(history.last_sent[:, channel], 30.0),
            (history.stat("bounced", 180)[:, channel] > 0).astype(float),
        ]
    )


def design_parts(
    history: History, messages: Sequence[str], spec: FeatureSpec
) -> tuple[FloatArray, list[FloatArray]]:
    """The customer-level columns (n, s) and, per channel, its own columns (n, d - s):
    the design of channel ``c`` is ``[shared, own[c]]``."""
    shared = _customer_columns(history, messages, spec)
    machine = machine_opener(history)
    return shared, [_channel_columns(history, c, spec, machine) for c in range(len(CHANNELS))]


def candidate_rows(
    history: History, messages: Sequence[str], spec: FeatureSpec
) -> list[FloatArray]:
    """For each channel, the (n, d) design of every customer as a candidate for it."""
    shared, own = design_parts(history, messages, spec)
    return [np.column_stack([shared, block]) for block in own]
