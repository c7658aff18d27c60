"""The learned channel policy: expected value minus cost, with a little exploration.

For a ``best`` send, each eligible channel ``c`` scores ``value * p_c - cost_c`` where
``p_c`` is the model's calibrated probability that a send on ``c`` converts. The policy
draws from an epsilon-greedy distribution: the best-scoring channel with probability
``1 - epsilon``, a uniformly random eligible channel otherwise (``epsilon`` a few
percent). The distribution, each score and the chosen channel's propensity are logged,
so any policy can later be evaluated offline on these decisions.

Without a model (none trained yet, or it cannot be loaded: the error is logged) the
rule decides (:func:`~omni_journey.channels.policy.rule_channel`), still exploring with
``cold_epsilon`` so the first model has something to learn from; set it to 0 for the
pure rule. Fixed channels and fallback lists never consult the model.

Draws are deterministic per send: the random numbers come from a hash of the send (journey,
version, customer, step, due time; never a database id), so a re-run of the same pass, or
the same work on another store, makes the same decisions.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection

from omni_journey.channels.artefacts import ModelLoader
from omni_journey.channels.draws import (
    Request,
    Row,
    cold_row,
    mask,
    rule_index,
    rule_reason,
    uniform,
)
from omni_journey.channels.draws import (
    known as known_channels,
)
from omni_journey.channels.policy import Decision, rule_channel
from omni_journey.channels.sendtime import best_send_time
from omni_journey.engine.types import SendMessage
from omni_journey.settings import Settings
from omni_journey.spec.conditions import CHANNELS
from omni_journey.spec.models import QuietHours

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from omni_journey.channels.features import FloatArray, History
    from omni_journey.channels.model import ChannelModel

# numpy, the features and the model load when a model scores or a send time is chosen
# (both need the customers' history); before the first model, the rule and its
# exploration decide in plain Python, and a pass loads none of them (about 0.15 s of
# start-up for every pass).

__all__ = ["LearnedPolicy", "Loaded", "Request", "Scored", "parse_costs"]

_INDEX = {c: i for i, c in enumerate(CHANNELS)}
_FLAT = [1.0] * 24  # the population prior over local hours before the first model


def parse_costs(text: str) -> dict[str, float]:
    """``"email=0.001,sms=0.05"`` as {channel: cost}; channels not named cost 0."""
    costs = dict.fromkeys(CHANNELS, 0.0)
    for pair in text.split(","):
        if "=" in pair:
            name, value = pair.split("=", 1)
            costs[name.strip()] = float(value)
    return costs


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


class LearnedPolicy:
    """See the module doc. ``model`` pins a model (tests, benchmarks); otherwise the
    active model is loaded from the registry and ``models_dir`` on first use."""

    name = "learned-v1"

    def __init__(
        self,
        *,
        models_dir: Path | None = None,
        model: ChannelModel | None = None,
        value: float = 25.0,
        costs: Mapping[str, float] | None = None,
        epsilon: float = 0.05,
        cold_epsilon: float = 0.1,
        send_time_explore: float = 0.05,
        attribution_hours: float = 72.0,
        salt: str = "omni-journey",
    ) -> None:
        self.loader = ModelLoader(models_dir) if models_dir is not None and model is None else None
        self.model = model
        self.value = value
        self.costs = dict(costs) if costs is not None else dict.fromkeys(CHANNELS, 0.0)
        self.epsilon = epsilon
        self.cold_epsilon = cold_epsilon
        self.send_time_explore = send_time_explore
        self.attribution_hours = attribution_hours
        self.salt = salt

    @classmethod
    def from_settings(cls, settings: Settings) -> LearnedPolicy:
        return cls(
            models_dir=settings.home / "models",
            value=settings.channel_conversion_value,
            costs=parse_costs(settings.channel_costs),
            epsilon=settings.channel_epsilon,
            cold_epsilon=settings.channel_cold_epsilon,
            send_time_explore=settings.channel_send_time_explore,
            attribution_hours=settings.channel_attribution_hours,
        )

    # --- the runner's interface -----------------------------------------------------------

    def choose(self, channels: Sequence[str], choice: str) -> Decision:
        """One send without customer context: the rule (no exploration, nothing to learn)."""
        if not channels:
            raise ValueError("no eligible channel: the engine should have skipped this send")
        chosen = rule_channel(channels) if choice == "best" else channels[0]
        scores = {c: (1.0 if c == chosen else 0.0) for c in channels}
        return Decision(
            channel=chosen,
            eligible=tuple(channels),
            scores=scores,
            probabilities=dict(scores),
            propensity=1.0,
            policy=self.name,
            reason=rule_reason(choice, channels) + " (no customer context)",
            choice=choice,
        )

    def load(self, connection: Connection, sends: Sequence[SendMessage], now: datetime) -> Loaded:
        """The active model, and one history load for all the batch's customers. Without
        a model the history is read only when a send asks for ``send_at: best``: the
        rule and its exploration do not use it, so a pass before the first model costs
        no more than the rule's."""
        model = self.model
        if model is None and self.loader is not None:
            model = self.loader.get(connection)
        customers = sorted({s.customer_id for s in sends})
        needed = model is not None or any(s.send_at == "best" for s in sends)
        history = None
        if customers and needed:
            from omni_journey.channels.features import load_history

            history = load_history(
                connection, customers, now, attribution_hours=self.attribution_hours
            )
        return Loaded(customers, history, model)

    def decide_many(
        self,
        loaded: Loaded,
        sends: Sequence[SendMessage],
        now: datetime,
        *,
        quiet_hours: QuietHours | None = None,
    ) -> list[Decision]:
        """Decide a batch of the engine's sends from what :meth:`load` read: no I/O."""
        if not sends:
            return []
        requests = [Request.of(s) for s in sends]
        if loaded.history is None:  # no model and no send time to pick: no context needed
            return self.decide(None, requests, now, model=None, quiet_hours=quiet_hours)
        import numpy as np

        where = {c: i for i, c in enumerate(loaded.customers)}
        index = np.array([where[r.customer_id] for r in requests], dtype=np.int64)
        rows = loaded.history.take(index)
        return self.decide(rows, requests, now, model=loaded.model, quiet_hours=quiet_hours)

    def choose_many(
        self,
        connection: Connection,
        sends: Sequence[SendMessage],
        now: datetime,
        *,
        quiet_hours: QuietHours | None = None,
    ) -> list[Decision]:
        """:meth:`load` then :meth:`decide_many`."""
        if not sends:
            return []
        loaded = self.load(connection, sends, now)
        return self.decide_many(loaded, sends, now, quiet_hours=quiet_hours)

    # --- the decision itself ----------------------------------------------------------------

    def score(
        self, history: History | None, requests: Sequence[Request], model: ChannelModel | None
    ) -> Scored:
        """Probabilities, scores and the distribution to draw from, for every request."""
        import numpy as np

        n, k = len(requests), len(CHANNELS)
        eligible = np.array([mask(r.channels) for r in requests], dtype=bool).reshape(n, k)
        p = np.full((n, k), np.nan)
        if model is not None and n:
            if history is None:
                raise ValueError("a model needs the customers' history to score them")
            p = model.predict(history, [r.message for r in requests])
        cost = np.array([self.costs.get(c, 0.0) for c in CHANNELS])
        scores = np.where(eligible, self.value * p - cost, np.nan)
        scored = eligible & ~np.isnan(scores)
        rule = np.array([rule_index(r.channels) for r in requests], dtype=np.int64)
        modelled = scored.any(axis=1)
        greedy = np.where(
            modelled, np.argmax(np.where(scored, scores, -np.inf), axis=1), rule
        ).astype(np.int64)
        epsilon = np.where(modelled, self.epsilon, self.cold_epsilon)
        count = eligible.sum(axis=1)
        epsilon = np.where(count > 1, epsilon, 0.0)
        dist = np.where(eligible, epsilon[:, None] / np.maximum(count, 1)[:, None], 0.0)
        dist[np.arange(n), greedy] += 1.0 - epsilon
        return Scored(p, scores, dist, greedy, epsilon, np.asarray(modelled, dtype=bool))

    def decide(
        self,
        history: History | None,
        requests: Sequence[Request],
        now: datetime,
        *,
        model: ChannelModel | None,
        quiet_hours: QuietHours | None = None,
    ) -> list[Decision]:
        """Decisions for ``requests`` whose contexts are ``history`` rows (same order).
        Without a model, ``history`` may be ``None`` unless a request asks for a send time."""
        error = self.loader.error if self.loader is not None and model is None else None
        if model is None and history is None:
            rows = [cold_row(r, self.cold_epsilon) for r in requests]
        else:
            scored = self.score(history, requests, model)
            rows = list(
                zip(
                    scored.p.tolist(),
                    scored.scores.tolist(),
                    scored.dist.tolist(),
                    scored.greedy.tolist(),
                    scored.epsilon.tolist(),
                    scored.modelled.tolist(),
                    strict=True,
                )
            )
        decisions = []
        for i, request in enumerate(requests):
            decision = self._one(request, rows[i], model, error)
            if request.send_at == "best":
                if history is None:
                    raise ValueError("send_at: best needs the customers' history")
                # the population's hours come from the model (all the training data);
                # before one, a flat prior: never the hours of whoever shares the batch,
                # or a customer's send time would depend on the batch size or the shard
                population = model.population_hours.tolist() if model is not None else _FLAT
                rng = random.Random(uniform(self.salt, request.key, "send_time"))
                at = best_send_time(
                    history.hours[i].tolist(),
                    population,
                    now,
                    _zone(history.timezones[i]),
                    quiet_hours,
                    rng,
                    explore=self.send_time_explore,
                )
                decision = replace(decision, send_after=at)
            decisions.append(decision)
        return decisions

    def _one(
        self,
        request: Request,
        row: Row,
        model: ChannelModel | None,
        error: str | None,
    ) -> Decision:
        p, score, dist, greedy, epsilon, modelled = row
        channels = request.channels
        known = known_channels(channels)
        if not channels:
            raise ValueError("no eligible channel: the engine should have skipped this send")
        scores = {c: score[_INDEX[c]] for c in known if score[_INDEX[c]] == score[_INDEX[c]]}
        extra: dict[str, Any] = {
            "p_convert": {c: p[_INDEX[c]] for c in scores},
            "value": self.value,
        }
        if error:
            extra["model_error"] = error
        common: dict[str, Any] = {
            "eligible": tuple(channels),
            "policy": self.name,
            "model_version": model.version if model is not None else None,
            "extra": extra,
            "choice": request.choice,
        }
        if request.choice != "best" or len(known) < 2 or len(known) < len(channels):
            chosen = rule_channel(channels) if request.choice == "best" else channels[0]
            one_hot = {c: float(c == chosen) for c in channels}
            return Decision(
                channel=chosen,
                scores=scores or one_hot,
                probabilities=one_hot,
                propensity=1.0,
                reason=rule_reason(request.choice, channels),
                **common,
            )
        explored = uniform(self.salt, request.key, "explore") < epsilon
        if explored:
            pick = int(uniform(self.salt, request.key, "channel") * len(known))
            chosen = known[min(pick, len(known) - 1)]
        else:
            chosen = CHANNELS[greedy]
        if modelled:
            reason = "model: highest expected value minus cost"
        else:
            reason = "rule: cheapest eligible channel" + (" (model unavailable)" if error else "")
        return Decision(
            channel=chosen,
            scores=scores or {c: float(c == CHANNELS[greedy]) for c in known},
            probabilities={c: dist[_INDEX[c]] for c in known},
            propensity=dist[_INDEX[chosen]],
            explored=explored,
            reason=reason,
            **common,
        )


@dataclass(frozen=True)
class Loaded:
    """What :meth:`LearnedPolicy.load` read: the batch's customers (sorted), their
    history rows in that order, and the model to score with (``None``: the rule)."""

    customers: list[str]
    history: History | None
    model: ChannelModel | None


@dataclass(frozen=True)
class Scored:
    """What :meth:`LearnedPolicy.score` computes, each (n, channels) unless noted."""

    p: FloatArray  # conversion probability (nan: no model or untrained channel)
    scores: FloatArray  # value * p - cost (nan where not a scored candidate)
    dist: FloatArray  # the distribution drawn from
    greedy: NDArray[np.int64]  # (n,) the best-scoring (or the rule's) channel
    epsilon: FloatArray  # (n,) exploration probability
    modelled: NDArray[np.bool_]  # (n,) the model scored at least one candidate
