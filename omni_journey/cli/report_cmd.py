"""``omni-journey report``: funnels, conversions, holdout lift, channel mix, with charts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from omni_journey.cli.reading import open_store_for_reading
from omni_journey.errors import ConfigError
from omni_journey.settings import get_settings

commands = typer.Typer()


def _parse_time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"expected an ISO 8601 time like 2026-05-01T10:00Z, got {value!r}", param_hint=option
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@commands.command("report")
def report_cmd(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Folder to write index.html and charts/ to (default: OMNI_HOME/report)."
        ),
    ] = None,
    journey: Annotated[
        list[str] | None,
        typer.Option("--journey", help="Only this journey (repeat for several; default: all)."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Start of the period (ISO 8601; default: all history)."),
    ] = None,
    now: Annotated[
        str | None,
        typer.Option("--now", help="End of the period (ISO 8601; default: now)."),
    ] = None,
    bucket: Annotated[
        str, typer.Option("--bucket", help="Channel mix per hour, day, week or month.")
    ] = "day",
    policy: Annotated[
        bool,
        typer.Option("--policy/--no-policy", help="Evaluate the channel policy vs baselines."),
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the figures as one JSON object.")
    ] = False,
) -> None:
    """Write the report: per-journey funnels, conversions and holdout lift with 95%
    intervals, channel mix over time, delivery and suppression rates, and the channel
    policy's value vs baselines, as one HTML page with PNG charts. Counts only."""
    # Imported here: the policy's value scores with scikit-learn and the charts draw with
    # matplotlib; no other command should load either.
    from omni_journey.analytics import (
        ReportOptions,
        build_report,
        render_report,
        report_json,
        report_summary,
    )
    from omni_journey.analytics.catalogue import known_journeys

    errors = Console(stderr=True)
    try:
        settings = get_settings()
    except ConfigError as error:
        errors.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    if bucket not in ("hour", "day", "week", "month"):
        raise typer.BadParameter("expected hour, day, week or month", param_hint="--bucket")
    at = _parse_time(now, "--now") or datetime.now(UTC)
    start = _parse_time(since, "--since")
    if start is not None and start >= at:
        raise typer.BadParameter("--since must be before --now", param_hint="--since")
    options = ReportOptions.from_settings(
        settings,
        bucket=bucket,
        include_policy=policy,
    )
    engine = open_store_for_reading(settings)
    try:
        with engine.connect() as connection:
            if journey:
                known = set(known_journeys(connection))
                unknown = sorted(set(journey) - known)
                if unknown:
                    errors.print(
                        f"[red]error:[/red] no journey {', '.join(map(repr, unknown))} in the "
                        f"store (known: {', '.join(sorted(known)) or 'none'})"
                    )
                    raise typer.Exit(2)
            report = build_report(
                connection, now=at, journeys=journey or None, since=start, options=options
            )
    finally:
        engine.dispose()
    path = render_report(report, out if out is not None else settings.home / "report")
    if as_json:
        typer.echo(json.dumps({"path": str(path), **report_json(report)}))
        return
    typer.echo(f"report: {path}")
    for line in report_summary(report):
        typer.echo(line)
