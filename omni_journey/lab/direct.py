"""The demo's passes without Prefect: the package calls the production flows make.

``flows/demo.py`` (``FlowPasses``) runs a simulated day as one Prefect flow run whose
tasks call these methods. :class:`DirectPasses` calls the same use cases in the same
order as the production flows do (the catalogue fan-out, then each segment in key
order; purchase cycles; the weekly channel model; every journey in key order; the
outbox in batches), without the orchestration, the artifacts or the Prefect events.
Tests and benchmarks use it to run the demo's core in seconds: what differs from the
flows is only what Prefect adds around these calls.

The dispatcher runs on a frozen clock: every timestamp of a pass is the simulated
``now``, not ``now`` plus the wall-clock time the pass took. With the wall clock the
``sent_at`` of each message, and so the time of every answer of the shop, depended on
how fast the machine was, and the demo could not be reproduced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from omni_journey.channels.train import train_from_store
from omni_journey.cycles.daily import run_purchase_cycles
from omni_journey.delivery import DispatchReport, Renderer, dispatch, load_providers
from omni_journey.delivery.base import Provider
from omni_journey.delivery.ratelimit import TokenBucket
from omni_journey.lab.demo import PassTime, ShopSide
from omni_journey.runner.passes import JourneyRunner
from omni_journey.segments.evaluate import evaluate_segments
from omni_journey.segments.triggers import behavioural_segments, fan_out_catalogue_events
from omni_journey.service.pipeline import build_runner, load_valid_project, project_renderer
from omni_journey.settings import Settings
from omni_journey.spec.project import Project

__all__ = ["DirectPasses", "frozen_clock"]

TRAIN_EVERY = timedelta(days=7)
_MAX_BATCHES = 200  # as flows/dispatch.py: a pass never loops forever


def frozen_clock() -> float:
    """A monotonic clock that never moves: the dispatcher's timestamps stay at ``now``."""
    return 0.0


@dataclass
class DirectPasses:
    """:class:`omni_journey.lab.demo.Passes` by direct calls (see the module doc).

    ``settings`` are the demo's (``demo_settings``): its store, file providers, home.
    What does not change during a demo is made once: the project, the providers and the
    template renderer; the runner is made again after each daily pass (a model trained
    there decides the channels from then on)."""

    engine: Engine
    settings: Settings
    trained_on: datetime | None = None
    calls: dict[str, int] = field(default_factory=dict)
    _project: Project | None = None
    _runner: JourneyRunner | None = None
    _dispatching: tuple[dict[str, Provider], Renderer] | None = None

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    @property
    def project(self) -> Project:
        if self._project is None:
            self._project = load_valid_project(self.settings)
        return self._project

    def run_day(self, passes: Sequence[PassTime], shop: ShopSide) -> None:
        """The day's passes, one after the other (:class:`~omni_journey.lab.demo.Passes`)."""
        for at in passes:
            self.run_pass(at, shop)

    def run_pass(self, at: PassTime, shop: ShopSide) -> None:
        """One pass: the shop's news, the daily passes when due, advance, dispatch, and
        the shop's answers."""
        shop.before(at)
        if at.daily:
            self.daily(at.now)
        counts = self.advance(at.now)
        dispatched = self.dispatch(at.now)
        shop.after(at, counts, dispatched)

    def daily(self, now: datetime) -> None:
        """``evaluate-segments``, ``purchase-cycles`` and, once a week, the model."""
        project = self.project
        known = {**behavioural_segments(), **project.segments}
        fan_out_catalogue_events(self.engine, now=now)
        for key in sorted(project.segments):
            evaluate_segments(self.engine, known, now=now, keys=[key])
        run_purchase_cycles(self.engine, now=now)
        self._count("daily")
        if self.trained_on is None or now - self.trained_on >= TRAIN_EVERY:
            train_from_store(self.engine, models_dir=self.settings.home / "models", now=now)
            self.trained_on = now
            self._count("train")
        self._runner = None  # the channel policy may have changed

    def advance(self, now: datetime) -> Mapping[str, Mapping[str, int]]:
        """``advance``: every enabled journey, one after the other in key order, in one
        runner pass (the customers' facts are read once for all journeys)."""
        project = self.project
        if self._runner is None:
            self._runner = build_runner(self.engine, project, self.settings)
        keys = sorted(k for k, spec in project.journeys.items() if spec.enabled)
        report = self._runner.run(now, only=keys)
        self._count("advance")
        return {key: dict(report.journeys.get(key, {})) for key in keys}

    def dispatch(self, now: datetime) -> Mapping[str, Any]:
        """``dispatch``: claim and send due messages in batches until a batch is short."""
        if self._dispatching is None:
            self._dispatching = (load_providers(self.settings), project_renderer(self.settings))
        providers, renderer = self._dispatching
        rates = self.settings.provider_rate_limits
        # rate limits protect a provider in real time: their buckets keep the real clock
        buckets = {p.name: TokenBucket(rates.get(p.name)) for p in providers.values()}
        size = self.settings.dispatch_batch_size
        total: dict[str, Any] = {"claimed": 0, "sent": 0, "failed": 0, "suppressed": 0}
        for number in range(1, _MAX_BATCHES + 1):
            report: DispatchReport = dispatch(
                self.engine,
                providers,
                renderer,
                now=now,
                settings=self.settings,
                worker_id=f"demo:{number}",
                limit=size,
                clock=frozen_clock,
                rate_limiters=buckets,
            )
            for name in total:
                total[name] += int(getattr(report, name))
            if report.claimed < size or report.paused:
                break
        self._count("dispatch")
        return total
