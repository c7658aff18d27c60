"""``omni-journey demo``: the main job on the embedded default."""

from __future__ import annotations

import importlib
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from omni_journey.errors import ConfigError, SpecError
from omni_journey.settings import get_settings
from omni_journey.store import create_store_engine

if TYPE_CHECKING:
    from omni_journey.lab.demo import DemoSummary, Tick

commands = typer.Typer()


def _summary_table(summary: DemoSummary, converted: dict[str, int]) -> Table:
    table = Table(title="what each journey did")
    columns = ("journey", "entered", "sent", "skipped", "deferred", "exited", "converted")
    for column in columns:
        table.add_column(column, justify="left" if column == "journey" else "right")
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
            help="Simulated hours between two passes (an advance and a dispatch flow run).",
        ),
    ] = 3,
) -> None:
    """Run a simulated shop through every journey in journeys/ for a month, on the
    embedded default (SQLite under OMNI_HOME/demo, the file outbox), with the Prefect
    flows doing the work (Prefect's ephemeral API unless PREFECT_API_URL is set), and
    summarise; then write the report."""
    # Imported here: the demo shop needs numpy and the flows need Prefect; --help needs
    # neither.
    from omni_journey.lab.demo import DemoConfig, conversions, demo_settings
    from omni_journey.service.pipeline import load_valid_project

    console = Console()
    try:
        base = get_settings()
        project = load_valid_project(base)
        flows = _flows(Path(base.project_dir).resolve())
    except (ConfigError, SpecError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from None
    settings = demo_settings(base)
    config = DemoConfig(customers=customers, days=days, seed=seed, tick=timedelta(hours=pass_every))
    console.print(
        f"[bold]omni-journey demo[/bold]: {customers} customers, {days} simulated days, "
        f"{len(project.journeys)} journeys ({', '.join(sorted(project.journeys))})"
    )
    console.print(f"store: {settings.resolved_database_url}   outbox: {settings.outbox_dir}")
    api = os.environ.get("PREFECT_API_URL")
    console.print(
        "Prefect: flow runs go to "
        + (api if api else "a temporary local Prefect server (set PREFECT_API_URL to watch them)")
    )
    started = time.monotonic()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("passes", total=None, status="loading the shop")
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

        run = flows.run_demo_flows(settings, project, config, on_tick=on_tick)
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
    console.print(f"open the messages that would have been sent: {summary.outbox}/<channel>/")
    console.print(f"open the report: {run.report}")
