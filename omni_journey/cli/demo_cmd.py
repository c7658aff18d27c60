"""``omni-journey demo``: the main job on the embedded default."""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from omni_journey.errors import ConfigError, SpecError
from omni_journey.settings import Settings, get_settings
from omni_journey.store import create_store_engine

if TYPE_CHECKING:
    from omni_journey.lab.demo import DemoSummary, Tick

commands = typer.Typer()


def _summary_table(summary: DemoSummary, converted: dict[str, int]) -> Table:
    """Per journey: what it did. A journey's name is never cut: its column is as wide
    as the longest name, and the figures' headers wrap first on a narrow terminal."""
    table = Table(
        title="what each journey did",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    longest = max((len(key) for key in summary.journeys), default=7)
    table.add_column("journey", no_wrap=True, min_width=longest, overflow="fold")
    for column in ("entered", "sent", "skipped", "deferred", "exited", "converted"):
        table.add_column(column, justify="right", overflow="fold")
    for key, counts in sorted(summary.journeys.items()):
        table.add_row(
            key,
            str(counts["entered"]),
            str(counts["queued"]),
            str(counts["skipped"]),
            str(counts["deferred"]),
            str(counts["exited"] + counts["completed"]),
            str(converted.get(key, 0)),
        )
    return table


def _flows(root: Path) -> Any:
    """``flows/demo.py`` of the project: the demo runs the same flows the Prefect
    deployments run (``prefect.yaml``), imported from the folder they are deployed
    from. Prefect logs warnings only, so the progress bar stays readable."""
    if not (root / "flows" / "demo.py").is_file():
        raise ConfigError(
            "OMNI_PROJECT_DIR",
            f"no flows/demo.py under {root}: run the demo from the repository root "
            "(where journeys/ and flows/ are)",
        )
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module("flows.demo")


class _Stop(KeyboardInterrupt):
    """Ctrl-C or SIGTERM: both stop the demo the same way (SIGTERM as if Ctrl-C)."""


_received: list[int] = []  # the stopping signal, for the exit code


def _on_stop(signum: int, frame: Any) -> None:
    # What the interrupted code logs on the way out (Prefect's "Crash detected!" for the
    # runs, SQLAlchemy's "Exception closing connection" when the signal lands there)
    # is about this stop, which was asked for: the demo says it once, in its own words.
    logging.disable(logging.ERROR)
    sys.unraisablehook = _ignore
    _received.append(signum)
    raise _Stop()


def _ignore(unraisable: Any) -> None:
    """No "Exception ignored in ..." report while the demo stops."""


class _PlainProgress:
    """Progress when the output is not a terminal (a log, CI): a line a simulated day."""

    def __init__(self, console: Console, started: float) -> None:
        self.console = console
        self.started = started
        self.sent = 0
        self.day: date | None = None

    def __call__(self, tick: Tick) -> None:
        self.sent += tick.sent
        if self.day is not None and tick.now.date() == self.day and tick.index < tick.total:
            return
        self.day = tick.now.date()
        self.console.print(
            f"pass {tick.index}/{tick.total}  {tick.now:%a %d %b %H:%M} UTC  "
            f"{self.sent} messages sent  {time.monotonic() - self.started:.0f} s",
            highlight=False,
        )
        sys.stdout.flush()


@contextmanager
def _progress(console: Console, started: float) -> Iterator[Callable[[Tick], None]]:
    """A progress bar on a terminal; otherwise a plain line a simulated day."""
    if not console.is_terminal:
        yield _PlainProgress(console, started)
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("passes", total=None, status="generating the shop")
        sent = 0

        def on_tick(tick: Tick) -> None:
            nonlocal sent
            sent += tick.sent
            progress.update(
                task,
                total=tick.total,
                completed=tick.index,
                status=f"{tick.now:%a %d %b %H:%M} UTC · {sent} messages sent",
            )

        yield on_tick


def _closing(console: Console, settings: Settings, report: Path) -> None:
    from omni_journey.lab.explore import explore_commands, shown_path

    engine = create_store_engine(settings.resolved_database_url)
    try:
        lines = explore_commands(engine, settings.home, report=report)
    finally:
        engine.dispose()
    console.print(
        f"\n[bold]explore what it did[/bold] (the demo's store is {shown_path(settings.home)}, "
        "not the default one: each command names it with OMNI_HOME):"
    )
    for line in lines:
        console.print(f"  {escape(line.label)}:", highlight=False)
        console.print(f"    {escape(line.command)}", highlight=False, soft_wrap=True)
        if line.after:
            console.print(f"    {escape(line.after)}", highlight=False)


@commands.command()
def demo(
    customers: Annotated[int, typer.Option(min=10, max=200_000, help="Shop size.")] = 1000,
    days: Annotated[int, typer.Option(min=1, max=365, help="Simulated days.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed of the simulated shop.")] = 7,
    pass_every: Annotated[
        int,
        typer.Option(
            min=1,
            max=24,
            help="Simulated hours between two passes (every journey, then the outbox).",
        ),
    ] = 3,
    history_days: Annotated[
        int, typer.Option(min=1, max=730, help="Days of shop history before the demo starts.")
    ] = 180,
) -> None:
    """Run a simulated shop through every journey in journeys/ for a month, on the
    embedded default (SQLite under OMNI_HOME/demo, the file outbox), with the Prefect
    flows doing the work (a temporary local Prefect server unless PREFECT_API_URL is
    set), and summarise; then write the report."""
    started = time.monotonic()
    for stopping in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stopping, _on_stop)
    console = Console()
    home: Path | None = None
    try:
        # Imported here: the demo shop needs numpy and the flows need Prefect; --help
        # needs neither.
        from omni_journey.lab.demo import DemoConfig, demo_settings
        from omni_journey.service.pipeline import load_valid_project

        try:
            base = get_settings()
            project = load_valid_project(base)
            flows = _flows(Path(base.project_dir).resolve())
        except (ConfigError, SpecError) as error:
            console.print(f"[red]error:[/red] {escape(str(error))}")
            raise typer.Exit(1) from None
        settings = demo_settings(base)
        home = settings.home
        config = DemoConfig(
            customers=customers,
            days=days,
            seed=seed,
            history_days=history_days,
            tick=timedelta(hours=pass_every),
        )
        console.print(
            f"[bold]omni-journey demo[/bold]: {customers} customers with {history_days} days "
            f"of history, {days} simulated days, a pass every {pass_every} simulated hours, "
            f"{len(project.journeys)} journeys ({', '.join(sorted(project.journeys))})"
        )
        console.print(f"store: {settings.resolved_database_url}   outbox: {settings.outbox_dir}")
        api = os.environ.get("PREFECT_API_URL")
        console.print(
            "Prefect: one flow run a simulated day, to "
            + (
                api
                if api
                else f"a temporary local Prefect server (its database: {home / 'prefect'}; "
                "set PREFECT_API_URL to watch the runs in a UI)"
            )
        )
        sys.stdout.flush()
        with _progress(console, started) as on_tick:
            run = flows.run_demo_flows(settings, project, config, on_tick=on_tick)
        _summarise(console, settings, run, started)
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM outside the flows
        _stopped(console, home, stop)
    except Exception as error:
        if type(error).__name__ != "DemoStopped":  # flows.demo.DemoStopped (Prefect's side)
            raise
        _stopped(console, home, error)


def _summarise(console: Console, settings: Settings, run: Any, started: float) -> None:
    """The table per journey, the totals, and the commands to explore the rest."""
    from omni_journey.lab.demo import conversions

    summary: DemoSummary = run.summary
    engine = create_store_engine(settings.resolved_database_url)
    try:
        converted = dict(conversions(engine))
    finally:
        engine.dispose()
    console.print(_summary_table(summary, converted))
    channels = ", ".join(f"{c} {n}" for c, n in summary.sent_by_channel.most_common()) or "none"
    console.print(f"messages sent by channel: {channels}")
    feedback = ", ".join(
        f"{k.removeprefix('message.')} {v}" for k, v in sorted(summary.feedback.items())
    )
    console.print(f"what customers did with them: {feedback or 'nothing yet'}")
    console.print(
        f"{summary.customers} customers, {summary.history_events} history events, "
        f"{summary.events} events during the demo, {summary.passes} journey passes, "
        f"{run.flow_runs} Prefect flow runs, {summary.failed} failed and "
        f"{summary.suppressed} suppressed sends, in {time.monotonic() - started:.0f} s"
    )
    _closing(console, settings, run.report)


def _stopped(console: Console, home: Path | None, stop: BaseException) -> NoReturn:
    """End a demo that was asked to stop: one line, no traceback."""
    terminated = signal.SIGTERM in _received or str(stop) == "TerminationSignal"
    kept = f": what it stored so far is in {home}" if home is not None else ""
    console.print(f"demo stopped{kept}", highlight=False)
    raise typer.Exit(143 if terminated else 130)
