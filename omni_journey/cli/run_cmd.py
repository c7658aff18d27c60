"""``omni-journey run`` (one pass) and ``omni-journey simulate`` (a time-travel dry run)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
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
from omni_journey.settings import Settings, get_settings
from omni_journey.spec.diagnostics import did_you_mean
from omni_journey.spec.project import Project
from omni_journey.store import open_store
from omni_journey.store.shards import ALL, Shard, ShardError

commands = typer.Typer()

SHARD_HELP = (
    "Work on shard I of N of the customers (PostgreSQL): start N workers, --shard 1/N "
    "to --shard N/N, all with the same N, to share the work (docs/scaling.md). "
    "Default: all customers."
)


def parse_shard(value: str | None) -> Shard:
    """``--shard I/N`` -> :class:`Shard` (``None``: everyone)."""
    if value is None:
        return ALL
    try:
        return Shard.parse(value)
    except ShardError as error:
        raise typer.BadParameter(str(error)) from None


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


def _wide_console() -> Console:
    """The terminal's width; 120 columns into a file or a pipe (rich's 80 would fold the
    table's headers), unless ``COLUMNS`` says otherwise."""
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=120)
    return console


def _pass_table(report: PassReport) -> Table:
    """Per journey, what the pass did. The journey column is never cut (it is as wide as
    the longest key); on a narrow terminal, or output that is not one (80 columns), the
    figures' headers wrap instead."""
    table = Table(title="journey pass", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    longest = max((len(key) for key in report.journeys), default=7)
    table.add_column("journey", no_wrap=True, min_width=longest, overflow="fold")
    for column in ("entered", "queued", "skipped", "deferred", "exited", "completed", "converted"):
        table.add_column(column, justify="right", overflow="fold")
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
    shard: Annotated[str | None, typer.Option("--shard", metavar="I/N", help=SHARD_HELP)] = None,
) -> None:
    """One pass: enroll, advance every journey one step as far as it can go, dispatch."""
    part = parse_shard(shard)
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
            runner = build_runner(engine, project, settings, policy=choice.policy, shard=part)
            report = runner.run(at, only=[journey] if journey else None)
        except RefusedJourneysError as refused:  # the other journeys ran: dispatch theirs
            report = refused.report
        except ConfigError as error:  # shards on SQLite; workers of different counts
            Console(stderr=True).print(f"[red]error:[/red] {error}", markup=True)
            raise typer.Exit(2) from None
        console = _wide_console()
        console.print(_pass_table(report))
        console.print(
            choice.note, style="yellow" if choice.warning else None, markup=False, soft_wrap=True
        )
        if dispatch:
            console.print(dispatch_due(engine, settings, now=at, shard=part).summary())
    finally:
        engine.dispose()
    if report.refused:  # their customers wait where they are until the file is fixed
        errors = Console(stderr=True)
        errors.print("\n".join(str(d) for d in report.refused), markup=False, highlight=False)
        errors.print("[red]these journeys were not run (the others were): fix them first[/red]")
        raise typer.Exit(1)


# what a skip or refusal reason means, for the text report
_SKIP_HINTS = {
    "entry_segment": "not in the journey's entry segment when the trigger came (check "
    "the profiles' consent and attributes against the segment: docs/segments.md)",
    "no_consent": 'no consent for the channel (the profile\'s "consent")',
    "unreachable": "no address for any allowed channel (email, phone, push_tokens)",
    "re_entry": "already entered, and the journey's re_entry does not allow it yet",
    "already_active": "still in the journey from an earlier trigger",
    "undefined-variable": "the message reads a value this customer or event lacks "
    "(give it a default: omni-journey validate shows where)",
}


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
    details: dict[str, str] = {}
    for skip in result["skips"]:
        reasons[skip["reason"]] = reasons.get(skip["reason"], 0) + 1
        if skip.get("detail"):
            details.setdefault(skip["reason"], skip["detail"])
    for reason, count in sorted(reasons.items()):
        hint = _SKIP_HINTS.get(reason)
        console.print(f"  skipped {count}: {reason}" + (f": {hint}" if hint else ""), markup=False)
        if reason in details:
            console.print(f"    e.g. {details[reason]}", markup=False, soft_wrap=True)
    _print_warnings(result.get("warnings") or [])


def _print_warnings(warnings: list[str]) -> None:
    errors = Console(stderr=True)
    for warning in warnings:
        errors.print(f"[yellow]warning:[/yellow] {escape(warning)}", soft_wrap=True)


def _journey_key(given: str, project: Project) -> str:
    """The key of the journey ``given`` as a key or as its file (``journeys/x.yaml``);
    exit 2 naming the closest key when there is none."""
    key = Path(given).stem if given.endswith((".yaml", ".yml")) or "/" in given else given
    if key in project.journeys:
        return key
    known = sorted(project.journeys)
    close = did_you_mean(key, known)
    message = f"no journey {key!r}" + (f": did you mean {close!r}?" if close else "")
    Console(stderr=True).print(
        f"[red]error\\[unknown-journey]:[/red] {escape(message)} "
        f"(known: {escape(', '.join(known) or 'none')})",
        soft_wrap=True,
    )
    raise typer.Exit(2)


@commands.command("simulate")
def simulate_cmd(
    journey: Annotated[
        str,
        typer.Argument(help="The journey to replay: its key, or its file (journeys/<key>.yaml)."),
    ],
    customers: Annotated[
        Path,
        typer.Option(
            "--customers",
            exists=True,
            dir_okay=False,
            help="Profiles (JSONL or CSV; the keys: docs/data-formats.md).",
        ),
    ],
    events: Annotated[
        Path,
        typer.Option(
            "--events",
            exists=True,
            dir_okay=False,
            help="Events (JSONL or CSV; the keys, and catalogue events: docs/data-formats.md).",
        ),
    ],
    days: Annotated[
        int | None,
        typer.Option(
            "--days",
            min=1,
            max=3650,
            help="How long to replay from the start (default: until 14 days after the last "
            "event, so every event is in; events past a shorter window are named in a warning).",
            show_default=False,
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option("--start", help="Start time (ISO 8601; default: the day of the first event)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Replay a journey against given customers and events, with the same engine as
    production, in seconds: who enters, what is sent when on which channel, who
    converts, who exits and why. Nothing is sent and the store is not touched.

    Every message is rendered for its customer and event: one that would fail is
    reported as a skip with the reason. Catalogue events (customer_id _catalogue) reach
    the customers who viewed the product, as in production."""
    settings, project = _setup()
    key = _journey_key(journey, project)
    try:
        from omni_journey.service.simulate import simulate  # not for a pass: imports ingest

        result = simulate(
            project.journeys[key],
            project.segments,
            customers,
            events,
            days=days,
            settings=settings,
            start=parse_time(start) if start else None,
            global_cap=global_cap(settings),
        )
    except ConfigError as error:
        Console(stderr=True).print(f"[red]error:[/] {escape(str(error))}")
        raise typer.Exit(2) from None
    if as_json:
        _print_warnings(result.get("warnings") or [])
        typer.echo(json.dumps(result, sort_keys=False))
    else:
        _print_simulation(result)
