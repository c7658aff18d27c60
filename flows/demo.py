"""The demo's simulated month through Prefect flow runs (``omni-journey demo``).

:func:`omni_journey.lab.demo.run_demo` plays the shop: customers browse, cart,
order and answer the messages they get, pass by pass (every three simulated hours by
default). What moves them through the journeys runs as Prefect flow and task runs, with
the simulated time as ``now``: one ``demo-day`` flow run a simulated day, whose tasks
are the production use cases the ``advance``, ``dispatch``, ``evaluate-segments``,
``purchase-cycles`` and ``train-channel-model`` flows call
(:class:`omni_journey.lab.direct.DirectPasses`): a ``daily`` task (catalogue fan-out,
segments, purchase cycles, the weekly model) once a simulated day, and a ``pass`` task
(every journey, then the outbox) every pass. The production ``report`` flow ends it.

Why not the production flows themselves, a run of each every pass: that was about 550
flow runs, each journey's Prefect concurrency slot taken and given back (two server
round trips), seven artifacts an ``advance`` run and three a ``dispatch`` run, which cost
about six of the nine minutes the demo took (bench/README.md, "The demo"). Those are
for a deployment where passes overlap; the demo's passes run one after the other.

With no ``PREFECT_API_URL`` the runs go to the demo's own temporary server
(:mod:`flows._demo_server`); with one, they appear in that server's UI.

The runs are reproducible: the same seed gives the same demo (the dispatcher's clock is
frozen at the pass's ``now``, so no timestamp moves on with the wall clock).

Heartbeats are off for these runs: they detect crashed workers, and a sync flow run
with them on waits about a second at exit (bench/README.md, "Prefect costs").
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import TerminationSignal
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    PREFECT_LOGGING_TO_API_ENABLED,
    temporary_settings,
)
from sqlalchemy import Engine

from flows._artifacts import markdown_table, publish_summary
from flows._demo_server import DemoServer
from flows.report import report
from omni_journey.lab.demo import (
    DemoConfig,
    DemoSummary,
    PassTime,
    ShopSide,
    Tick,
    day_of,
    demo_environment,
    run_demo,
)
from omni_journey.lab.direct import DirectPasses
from omni_journey.lab.shop import START
from omni_journey.settings import Settings
from omni_journey.spec.project import Project

__all__ = ["PREFECT_FOLDER", "DemoRun", "DemoStopped", "FlowPasses", "run_demo_flows"]

#: the demo's Prefect server keeps its database here, under the demo's home
PREFECT_FOLDER = "prefect"


class DemoStopped(Exception):  # a stop asked for, not an error
    """The demo was stopped (Ctrl-C or SIGTERM); what it stored so far is kept."""


@dataclass
class _Day:
    """What the running ``demo-day`` flow works on: set by :meth:`FlowPasses.run_day`
    for the length of one flow run (the shop and the store are not flow parameters:
    Prefect records parameters in its database)."""

    core: DirectPasses
    passes: Sequence[PassTime]
    shop: ShopSide


_today: _Day | None = None


def _current() -> _Day:
    if _today is None:
        raise RuntimeError("demo-day runs only inside omni-journey demo")
    return _today


# The tasks take the pass's number, not the objects they work on: Prefect walks a task's
# arguments (dataclasses and models included) looking for futures, on every call.


@task(name="daily", task_run_name="daily-{label}", cache_policy=NO_CACHE, persist_result=False)
def daily(number: int, label: str) -> None:
    """Catalogue fan-out, every segment, purchase cycles; the channel model once a week."""
    today = _current()
    today.core.daily(today.passes[number].now)


@task(name="pass", task_run_name="pass-{label}", cache_policy=NO_CACHE, persist_result=False)
def journey_pass(
    number: int, label: str
) -> tuple[Mapping[str, Mapping[str, int]], Mapping[str, Any]]:
    """Every enabled journey as of the pass's ``now``, then the outbox (sent then)."""
    today = _current()
    now = today.passes[number].now
    return today.core.advance(now), today.core.dispatch(now)


@flow(
    name="demo-day",
    flow_run_name="demo-day-{day}",
    persist_result=False,
    validate_parameters=False,
)
def demo_day(day: str, passes: int) -> dict[str, int]:
    """One simulated day of the demo: the day's passes, in order (the shop answers
    between them); returns the messages sent per channel that day."""
    today = _current()
    if threading.current_thread() is threading.main_thread():
        # SIGTERM does here what Ctrl-C does (the demo's handler): Prefect's own,
        # installed for this run, would log the stop as crashed runs on the console
        signal.signal(signal.SIGTERM, signal.getsignal(signal.SIGINT))
    before = dict(today.shop.summary.sent_by_channel)
    rows: list[dict[str, Any]] = []
    for number, at in enumerate(today.passes):
        label = f"{at.now:%H:%M}"
        today.shop.before(at)
        if at.daily:
            daily(number, label)
        counts, dispatched = journey_pass(number, label)
        today.shop.after(at, counts, dispatched)
        rows.append({"pass": label, "sent": int(dispatched.get("sent", 0))})
    sent = {
        channel: count - before.get(channel, 0)
        for channel, count in sorted(today.shop.summary.sent_by_channel.items())
        if count - before.get(channel, 0)
    }
    publish_summary(
        "\n".join(
            [
                f"# Demo day {day}",
                "",
                f"{passes} passes; sent: "
                + (", ".join(f"{c} {n}" for c, n in sent.items()) or "nothing"),
                "",
                markdown_table(rows),
            ]
        ),
        key=("demo-day",),
        description=f"Demo day {day}",
    )
    return sent


@dataclass
class FlowPasses:
    """The demo's days as ``demo-day`` flow runs; counts the runs it started."""

    core: DirectPasses
    ready: Callable[[], None] = lambda: None
    flow_runs: int = 0
    days: list[str] = field(default_factory=list)

    def run_day(self, passes: Sequence[PassTime], shop: ShopSide) -> None:
        global _today
        self.ready()  # the server, started during the shop's generation
        day = day_of(passes[0].now).isoformat()
        _today = _Day(self.core, passes, shop)
        try:
            self.flow_runs += 1
            demo_day(day=day, passes=len(passes))
        finally:
            _today = None
        self.days.append(day)


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


@contextmanager
def _prefect(settings: Settings) -> Iterator[Callable[[], None]]:
    """The Prefect API the runs report to: ``PREFECT_API_URL`` when set, else the
    demo's own server, started now and stopped (after a flush) on the way out. Yields
    what waits until it answers."""
    updates: dict[Any, Any] = {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    server: DemoServer | None = None
    if not os.environ.get("PREFECT_API_URL"):
        server = DemoServer(settings.home / PREFECT_FOLDER)
        server.start()
        # nothing the demo logs is worth a second stream to a server that goes away
        updates |= {PREFECT_API_URL: server.api_url, PREFECT_LOGGING_TO_API_ENABLED: False}
    try:
        with temporary_settings(updates=updates):
            yield server.wait_ready if server is not None else (lambda: None)
    finally:
        if server is not None:
            server.stop()


def run_demo_flows(
    settings: Settings,
    project: Project,
    config: DemoConfig,
    *,
    on_tick: Callable[[Tick], None] | None = None,
) -> DemoRun:
    """Run the demo with Prefect flow runs doing the work; then the ``report`` flow.
    :class:`DemoStopped` on Ctrl-C or SIGTERM, after the server has been stopped."""
    try:
        with ExitStack() as stack:
            stack.enter_context(_environment(demo_environment(settings)))
            ready = stack.enter_context(_prefect(settings))
            made: list[FlowPasses] = []

            def make(engine: Engine) -> FlowPasses:
                made.append(FlowPasses(DirectPasses(engine, settings), ready))
                return made[0]

            summary = run_demo(
                settings, config, passes=make, on_tick=on_tick, keep=(PREFECT_FOLDER,)
            )
            ready()
            result = report(
                out=str(settings.home / "report"), now=START + timedelta(days=config.days)
            )
    except (KeyboardInterrupt, TerminationSignal) as stop:
        raise DemoStopped(type(stop).__name__) from None
    return DemoRun(
        summary=summary,
        report=Path(result["path"]),
        report_tables=result["tables"],
        flow_runs=(made[0].flow_runs if made else 0) + 1,
    )
