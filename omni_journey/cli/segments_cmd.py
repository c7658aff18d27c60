"""``omni-journey segments ...`` and ``omni-journey backtest purchase-cycles``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from omni_journey.cycles.daily import run_purchase_cycles
from omni_journey.cycles.model import CycleSettings
from omni_journey.lab.cycles_backtest import OrderFileError, backtest_purchase_cycles, load_orders
from omni_journey.segments.compile import SegmentError, count_members, select_members
from omni_journey.segments.evaluate import evaluate_segments
from omni_journey.segments.triggers import behavioural_segments, fan_out_catalogue_events
from omni_journey.settings import Settings, get_settings
from omni_journey.spec.diagnostics import format_diagnostics
from omni_journey.spec.durations import parse_duration
from omni_journey.spec.models import SegmentSpec
from omni_journey.spec.project import SEGMENTS_DIR, Project, load_project
from omni_journey.store import open_store

commands = typer.Typer()

segments_app = typer.Typer(
    help="Segments: who is in them, what changed, purchase cycles.", no_args_is_help=True
)
commands.add_typer(segments_app, name="segments")
backtest_app = typer.Typer(help="Back-test triggers on a history.", no_args_is_help=True)
commands.add_typer(backtest_app, name="backtest")

NowOption = Annotated[
    str | None,
    typer.Option("--now", help="Evaluate as of this time (ISO 8601 with a zone); default now."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _now(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(f"--now {value!r} is not ISO 8601 (e.g. 2026-05-01T10:00:00Z)", 2) from None
    if parsed.tzinfo is None:
        raise _fail(f"--now {value!r} has no time zone (add Z or +02:00)", 2)
    return parsed.astimezone(UTC)


def _duration(value: str, option: str) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as error:
        raise _fail(f"{option}: {error}", 2) from None


def _project(settings: Settings) -> Project | None:
    if not (settings.project_dir / SEGMENTS_DIR).is_dir():
        return None
    return load_project(settings.project_dir)


def _all_segments(project: Project | None) -> dict[str, SegmentSpec]:
    """The ready behavioural segments, overridden by the project's own files."""
    return {**behavioural_segments(), **(project.segments if project else {})}


def _segment(project: Project | None, key: str) -> SegmentSpec:
    segments = _all_segments(project)
    if key in segments:
        return segments[key]
    if project is not None:
        mine = [d for d in project.errors if Path(d.path).stem == key]
        if mine:
            typer.echo(format_diagnostics(mine), err=True)
            raise _fail(f"segment {key!r} has errors")
    known = ", ".join(sorted(segments)) or "none"
    raise _fail(f"no segment {key!r} (known: {known})")


@segments_app.command("list")
def list_cmd(as_json: JsonOption = False) -> None:
    """The segments of the project (segments/*.yaml) and the ready behavioural ones."""
    project = _project(get_settings())
    own = set(project.segments) if project else set()
    rows = [
        {"key": key, "source": "project" if key in own else "built-in", "name": spec.name}
        for key, spec in sorted(_all_segments(project).items())
    ]
    if as_json:
        typer.echo(json.dumps({"segments": rows}))
        return
    for row in rows:
        typer.echo(f"{row['key']:<28} {row['source']:<9} {row['name'] or ''}".rstrip())


@segments_app.command("show")
def show_cmd(
    key: Annotated[str, typer.Argument(help="The segment's key (its file name).")],
    sample: Annotated[int, typer.Option("--sample", min=0, help="How many ids to list.")] = 10,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """The segment's size now and a sample of its customer ids (in id order)."""
    settings = get_settings()
    project = _project(settings)
    spec = _segment(project, key)
    at = _now(now)
    engine = open_store(settings.resolved_database_url)
    try:
        with engine.connect() as connection:
            size = count_members(connection, spec, _all_segments(project), now=at)
            ids = select_members(connection, spec, _all_segments(project), now=at, limit=sample)
    except SegmentError as error:
        raise _fail(str(error)) from None
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps({"segment": key, "at": at.isoformat(), "size": size, "sample": ids}))
        return
    typer.echo(f"{key}: {size} customer{'s' if size != 1 else ''} at {at.isoformat()}")
    for customer_id in ids:
        typer.echo(f"  {customer_id}")
    if size > len(ids):
        typer.echo(f"  ... and {size - len(ids)} more")


@segments_app.command("evaluate")
def evaluate_cmd(
    keys: Annotated[
        list[str] | None,
        typer.Argument(help="Segments to evaluate; default: every segment of the project."),
    ] = None,
    now: NowOption = None,
    emit_on_first: Annotated[
        bool,
        typer.Option(
            "--emit-on-first",
            help="On a segment's first evaluation, emit segment.entered for everyone in it.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Update segment memberships; emit segment.entered / segment.exited for changes."""
    settings = get_settings()
    project = _project(settings)
    segments = _all_segments(project)
    wanted = list(keys) if keys else sorted(project.segments if project else {})
    for key in wanted:
        _segment(project, key)
    at = _now(now)
    engine = open_store(settings.resolved_database_url)
    try:
        deltas = evaluate_segments(
            engine, segments, now=at, keys=wanted, emit_on_first=emit_on_first
        )
    except SegmentError as error:
        raise _fail(str(error)) from None
    finally:
        engine.dispose()
    if as_json:
        payload: dict[str, Any] = {
            key: {"entered": d.entered, "left": d.left, "size": d.size, "baseline": d.baseline}
            for key, d in deltas.items()
        }
        typer.echo(json.dumps({"at": at.isoformat(), "segments": payload}))
        return
    if not deltas:
        typer.echo(f"no segments to evaluate (none in {settings.project_dir / SEGMENTS_DIR})")
    for key, delta in deltas.items():
        note = " (first evaluation: no events)" if delta.baseline else ""
        typer.echo(
            f"{key}: {delta.size} members, +{len(delta.entered)} entered, "
            f"-{len(delta.left)} left{note}"
        )


@segments_app.command("cycles")
def cycles_cmd(now: NowOption = None, as_json: JsonOption = False) -> None:
    """Predict purchase cycles and emit purchase_cycle.due for reminders that are due."""
    settings = get_settings()
    at = _now(now)
    engine = open_store(settings.resolved_database_url)
    try:
        report = run_purchase_cycles(engine, now=at)
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps({"at": at.isoformat(), **report.as_dict()}))
        return
    typer.echo(
        f"{report.series} customer-category histories of {report.customers} customers: "
        f"{report.regular} regular, {report.scheduled} scheduled, {report.emitted} due now, "
        f"{report.cancelled} cancelled by a purchase, {report.expired} expired"
    )


@segments_app.command("fan-out")
def fan_out_cmd(
    now: NowOption = None,
    lookback: Annotated[
        str, typer.Option("--lookback", help="Viewed the sku within this before the event.")
    ] = "30d",
    max_age: Annotated[
        str, typer.Option("--max-age", help="Catalogue events at most this old.")
    ] = "1d",
    as_json: JsonOption = False,
) -> None:
    """Copy product.price_dropped / product.back_in_stock to the customers who viewed it."""
    settings = get_settings()
    at = _now(now)
    window, age = _duration(lookback, "--lookback"), _duration(max_age, "--max-age")
    engine = open_store(settings.resolved_database_url)
    try:
        result = fan_out_catalogue_events(engine, now=at, lookback=window, max_age=age)
    finally:
        engine.dispose()
    if as_json:
        typer.echo(
            json.dumps({"catalogue_events": result.catalogue_events, "emitted": result.emitted})
        )
        return
    typer.echo(
        f"{result.catalogue_events} catalogue events, {result.emitted} customer events emitted"
    )


@backtest_app.command("purchase-cycles")
def backtest_cycles_cmd(
    orders: Annotated[
        Path,
        typer.Option(
            "--orders",
            help="Order history: JSON Lines or .csv (customer_id, at, category, amount).",
        ),
    ],
    split: Annotated[
        float,
        typer.Option("--split", min=0.05, max=0.95, help="Share of the time range to learn on."),
    ] = 0.5,
    remind_after: Annotated[
        float, typer.Option("--remind-after", min=1, help="Days, for the after-N-days baseline.")
    ] = 30.0,
    fire_quantile: Annotated[
        float, typer.Option("--fire-quantile", min=0.01, max=0.99, help="When reminders are due.")
    ] = CycleSettings.fire_quantile,
    alpha: Annotated[
        float, typer.Option("--alpha", min=0.0, max=1.0, help="Regularity test threshold.")
    ] = CycleSettings.alpha,
    as_json: JsonOption = False,
) -> None:
    """Replay an order history: the purchase-cycle method against a fixed interval
    (category median) and "remind N days after every purchase"."""
    try:
        history = load_orders(orders)
    except FileNotFoundError:
        raise _fail(f"no such file: {orders}", 2) from None
    except OrderFileError as error:
        raise _fail(str(error), 2) from None
    if not history:
        raise _fail(f"{orders}: no orders", 2)
    settings = CycleSettings(fire_quantile=fire_quantile, alpha=alpha)
    report = backtest_purchase_cycles(
        history, settings=settings, split=split, remind_after_days=remind_after
    )
    data = report.as_dict()
    if as_json:
        typer.echo(json.dumps(data))
        return
    typer.echo(
        f"{report.orders} orders, {report.customers} customers, {report.series} "
        f"customer-category histories; learned before {report.split_at.date()}, "
        f"scored after"
    )
    header = f"{'method':<16}{'reminders':>10}{'hit rate':>10}{'late':>8}{'MAE days':>10}"
    typer.echo(header + f"{'coverage':>10}{'window d':>10}")
    for name, score in data["methods"].items():
        typer.echo(
            f"{name:<16}{score['reminders']:>10}{score['hit_rate']:>10.1%}"
            f"{score['late_share']:>8.1%}{score['mae_days']:>10.1f}"
            f"{score['coverage']:>10.1%}{score['window_days']:>10.1f}"
        )
