"""A simulated shop on a real store, driven round by round (shared by channel tests)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine

from omni_journey.channels.features import CHANNELS, History, load_history
from omni_journey.channels.learned import LearnedPolicy, Request
from omni_journey.channels.model import ChannelModel
from omni_journey.channels.policy import Decision
from omni_journey.ingest.intake import ingest_events, ingest_profiles
from omni_journey.lab.shop import Shop, record_sends, sent_events
from omni_journey.settings import Settings


@dataclass
class SimulatedShop:
    engine: Engine
    shop: Shop
    settings: Settings
    now: datetime

    def ingest(self, events: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(events), 5000):
            result = ingest_events(
                self.engine, events[start : start + 5000], now=self.now, settings=self.settings
            )
            assert result.rejected == []

    def reachable(self) -> list[str]:
        rows = self.shop.eligible(self.shop.customer_ids).any(axis=1)
        return [c for c, ok in zip(self.shop.customer_ids, rows.tolist(), strict=True) if ok]

    def round(
        self,
        decide: Decide,
        customers: Sequence[str],
        tag: str,
        *,
        with_history: bool = False,
    ) -> list[Decision]:
        """One weekly campaign: the organic week, decisions, sends, answers."""
        self.ingest(self.shop.advance(self.now))
        ids = list(customers)
        eligible = self.shop.eligible(ids)
        messages = self.shop.next_message(ids, self.now)
        requests = [
            Request(c, m, tuple(ch for ch, ok in zip(CHANNELS, row, strict=True) if ok), "best",
                    f"{tag}:{c}")
            for c, m, row in zip(ids, messages, eligible.tolist(), strict=True)
        ]  # fmt: skip
        history = None
        if with_history:
            with self.engine.connect() as connection:
                history = load_history(connection, ids, self.now)
        decisions = decide(requests, history, self.now)
        with self.engine.begin() as connection:
            sent = record_sends(
                connection,
                [(c, d.channel, d.as_log()) for c, d in zip(ids, decisions, strict=True)],
                message_keys=messages,
                now=self.now,
                key_prefix=tag,
            )
        self.ingest(sent_events(sent) + self.shop.respond(sent, self.now))
        updates = self.shop.consent_updates()
        if updates:
            ingest_profiles(self.engine, updates, now=self.now, settings=self.settings)
        self.now += timedelta(days=7)
        return decisions


def simulated_shop(
    engine: Engine, home: Any, *, seed: int, customers: int, days: int
) -> SimulatedShop:
    shop = Shop(seed, customers)
    profiles, events = shop.generate(days)
    settings = Settings(home=home)
    sim = SimulatedShop(engine, shop, settings, shop.start + timedelta(hours=10))
    assert ingest_profiles(engine, profiles, now=shop.start, settings=settings).rejected == []
    sim.ingest(events)
    return sim


Decide = Callable[[list[Request], History | None, datetime], list[Decision]]


def by(policy: LearnedPolicy, model: ChannelModel | None = None) -> Decide:
    """Decisions of ``policy`` (with ``model``, or none: the rule plus exploration)."""

    def decide(requests: list[Request], history: History | None, now: datetime) -> list[Decision]:
        return policy.decide(history, requests, now, model=model)

    return decide


def halves(ids: Sequence[str], seed: int) -> tuple[list[str], list[str]]:
    """Split customers in two at random (seeded)."""
    mask = np.random.default_rng(seed).random(len(ids)) < 0.5
    a = [c for c, m in zip(ids, mask.tolist(), strict=True) if m]
    b = [c for c, m in zip(ids, mask.tolist(), strict=True) if not m]
    return a, b
