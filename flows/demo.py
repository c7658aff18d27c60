"""The demo's simulated month through the real flows (``omni-journey demo``).

:func:`omni_journey.lab.demo.run_demo` plays the shop: customers browse, cart,
order and answer the messages they get, hour by simulated hour. What moves them through
the journeys is the production flows, each called as a Prefect flow run with the
simulated time as ``now``: ``advance`` and ``dispatch`` every tick, ``evaluate-segments``
and ``purchase-cycles`` once a simulated day, ``train-channel-model`` once a simulated
week, and ``report`` at the end. With no ``PREFECT_API_URL`` they run against Prefect's
ephemeral API (a temporary local server); with one, they appear in that server's UI.

The runs are reproducible: the same seed gives the same demo (``dispatch`` runs with
``simulated=True``, so no timestamp moves on with the wall clock).

Heartbeats are off for these runs: they detect crashed workers, and a sync flow run
with them on waits about a second at exit (bench/README.md, "Prefect costs").
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from sqlalchemy import Engine

from flows.advance import advance
from flows.dispatch import dispatch_outbox
from flows.purchase_cycles import purchase_cycles
from flows.report import report
from flows.segments import segments_flow
from flows.train import train_channel_model
from omni_journey.lab.demo import (
    DemoConfig,
    DemoSummary,
    Tick,
    demo_environment,
    run_demo,
)
from omni_journey.lab.shop import START
from omni_journey.settings import Settings
from omni_journey.spec.project import Project

__all__ = ["DemoRun", "FlowPasses", "run_demo_flows"]


@dataclass
class FlowPasses:
    """The demo's passes as flow runs; counts the runs it started."""

    flow_runs: int = 0
    trained_on: datetime | None = None

    def daily(self, now: datetime) -> None:
        segments_flow(now=now)
        purchase_cycles(now=now)
        self.flow_runs += 2
        if self.trained_on is None or now - self.trained_on >= timedelta(days=7):
            train_channel_model(now=now)
            self.trained_on = now
            self.flow_runs += 1

    def advance(self, now: datetime) -> Mapping[str, Mapping[str, int]]:
        self.flow_runs += 1
        counts: dict[str, dict[str, int]] = advance(now=now)
        return counts

    def dispatch(self, now: datetime) -> Mapping[str, Any]:
        """The ``dispatch`` flow with ``simulated=True``: each send is stamped with the
        simulated ``now``, not ``now`` plus the seconds the flow run took, so the shop
        answers at the same times on every run (the demo stays reproducible)."""
        self.flow_runs += 1
        result: dict[str, Any] = dispatch_outbox(now=now, simulated=True)
        return result


@dataclass(frozen=True)
class DemoRun:
    summary: DemoSummary
    report: Path
    report_tables: dict[str, list[dict[str, Any]]]
    flow_runs: int


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_demo_flows(
    settings: Settings,
    project: Project,
    config: DemoConfig,
    *,
    on_tick: Callable[[Tick], None] | None = None,
) -> DemoRun:
    """Run the demo with the flows doing the work; then the ``report`` flow."""
    passes = FlowPasses()

    def make(_: Engine) -> FlowPasses:
        return passes

    with (
        _environment(demo_environment(settings)),
        temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        summary = run_demo(settings, config, passes=make, on_tick=on_tick)
        result = report(out=str(settings.home / "report"), now=START + timedelta(days=config.days))
    return DemoRun(
        summary=summary,
        report=Path(result["path"]),
        report_tables=result["tables"],
        flow_runs=passes.flow_runs + 1,
    )
