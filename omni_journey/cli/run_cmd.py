"""``omni-journey run`` (one pass) and ``omni-journey simulate`` (a time-travel dry run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from omni_journey.cli.options import parse_time
from omni_journey.errors import ConfigError, SpecError
from omni_journey.runner.passes import PassReport
from omni_journey.runner.versions import RefusedJourneysError
from omni_journey.service.pipeline import (
    build_runner,
    dispatch_due,
    global_cap,
    load_valid_project,
    select_policy,
)
from omni_journey.service.simulate import simulate
from omni_journey.settings import Settings, get_settings
from omni_journey.spec.project import Project
from omni_journey.store import open_store

commands = typer.Typer()


def _setup() -> tuple[Settings, Project]:
    console = Console(stderr=True)
    try:
        settings = get_settings()
        project = load_valid_project(settings)
    except ConfigError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    except SpecError as error:
        console.print(str(error))
        console.print("[red]the project has errors: fix them (omni-journey validate) first[/red]")
        raise typer.Exit(1) from None
    return settings, project


def _pass_table(report: PassReport) -> Table:
    table = Table(title="journey pass")
    for column in (
        "journey",
        "entered",
        "queued",
        "skipped",
        "deferred",
        "exited",
        "completed",
        "converted",
    ):
        table.add_column(column, justify="left" if column == "journey" else "right")
    for key, counts in sorted(report.journeys.items()):
        table.add_row(
            key,
            *(
                str(counts[c])
                for c in (
                    "entered",
                    "queued",
                    "skipped",
                    "deferred",
                    "exited",
                    "completed",
                    "converted",
                )
            ),
        )
    return table


@commands.command()
def run(
    journey: Annotated[
        str | None, typer.Option("--journey", help="Only this journey (default: all).")
    ] = None,
    now: Annotated[
        str | None, typer.Option("--now", help="The time of the pass (ISO 8601; default: now).")
    ] = None,
    dispatch: Annotated[
        bool, typer.Option("--dispatch/--no-dispatch", help="Send due messages after advancing.")
    ] = True,
) -> None:
    """One pass: enroll, advance every journey one step as far as it can go, dispatch."""
    settings, project = _setup()
    at = parse_time(now)
    if journey is not None and journey not in project.journeys:
        known = ", ".join(sorted(project.journeys)) or "none"
        Console(stderr=True).print(f"[red]error:[/red] no journey {journey!r} (known: {known})")
        raise typer.Exit(2)
    engine = open_store(settings.resolved_database_url)
    try:
        choice = select_policy(engine, settings)  # which policy decides channel: best, and why
        try:
            report = build_runner(engine, project, settings, policy=choice.policy).run(
                at, only=[journey] if journey else None
            )
        except RefusedJourneysError as refused:  # the other journeys ran: dispatch theirs
            report = refused.report
        console = Console()
        console.print(_pass_table(report))
        console.print(
            choice.note, style="yellow" if choice.warning else None, markup=False, soft_wrap=True
        )
        if dispatch:
            console.print(dispatch_due(engine, settings, now=at).summary())
    finally:
        engine.dispose()
    if report.refused:  # their customers wait where they are until the file is fixed
        errors = Console(stderr=True)
        errors.print("\n".join(str(d) for d in report.refused), markup=False, highlight=False)
        errors.print("[red]these journeys were not run (the others were): fix them first[/red]")
        raise typer.Exit(1)


def _print_simulation(result: dict[str, Any]) -> None:
    console = Console()
    console.print(
        f"[bold]{result['journey']}[/bold] version {result['version']} "
        f"from {result['from']} to {result['to']}"
    )
    console.print(
        f"entered {len(result['entered'])}, sent {len(result['sends'])}, "
        f"skipped {len(result['skips'])}, converted {len(result['conversions'])}, "
        f"exited {len(result['exits'])}"
    )
    table = Table(title="steps")
    for column in ("step", "entered", "sent", "skipped"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for step, counts in result["steps"].items():
        table.add_row(step, str(counts["entered"]), str(counts["sent"]), str(counts["skipped"]))
    console.print(table)
    for send in result["sends"][:20]:
        console.print(
            f"  {send['at']}  {send['customer_id']}  {send['step']} -> {send['channel']} "
            f"({send['message']})"
        )
    if len(result["sends"]) > 20:
        console.print(f"  … {len(result['sends']) - 20} more sends (use --json for all)")
    reasons: dict[str, int] = {}
    for skip in result["skips"]:
        reasons[skip["reason"]] = reasons.get(skip["reason"], 0) + 1
    for reason, count in sorted(reasons.items()):
        console.print(f"  skipped {count}: {reason}")


@commands.command("simulate")
def simulate_cmd(
    journey: Annotated[str, typer.Argument(help="Key of the journey to replay.")],
    customers: Annotated[
        Path,
        typer.Option("--customers", exists=True, dir_okay=False, help="Profiles (JSONL or CSV)."),
    ],
    events: Annotated[
        Path, typer.Option("--events", exists=True, dir_okay=False, help="Events (JSONL or CSV).")
    ],
    days: Annotated[int, typer.Option("--days", min=1, max=3650, help="How long to replay.")] = 14,
    start: Annotated[
        str | None,
        typer.Option("--start", help="Start time (ISO 8601; default: the day of the first event)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Replay a journey over N days against given customers and events, with the same
    engine as production, in seconds: who enters, what is sent when on which channel,
    who converts, who exits and why. Nothing is sent and the store is not touched."""
    settings, project = _setup()
    if journey not in project.journeys:
        known = ", ".join(sorted(project.journeys)) or "none"
        Console(stderr=True).print(f"[red]error:[/red] no journey {journey!r} (known: {known})")
        raise typer.Exit(2)
    try:
        result = simulate(
            project.journeys[journey],
            project.segments,
            customers,
            events,
            days=days,
            settings=settings,
            start=parse_time(start) if start else None,
            global_cap=global_cap(settings),
        )
    except ConfigError as error:
        Console(stderr=True).print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(result, sort_keys=False))
    else:
        _print_simulation(result)
