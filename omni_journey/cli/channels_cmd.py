"""``omni-journey train`` (fit the channel model) and ``omni-journey evaluate`` (off-policy
evaluation of channel policies on the logged decisions)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from omni_journey.cli.options import parse_time
from omni_journey.errors import ConfigError
from omni_journey.settings import Settings, get_settings
from omni_journey.store import open_store

if TYPE_CHECKING:
    from omni_journey.channels.evaluate import Evaluation

commands = typer.Typer()

#: ``"learned"`` and :data:`omni_journey.channels.baselines.BASELINES`, written out so
#: that ``--help`` needs no scikit-learn (tests/unit/test_startup.py keeps them equal).
POLICY_NAMES: tuple[str, ...] = ("learned", "email", "random", "rule", "most-engaged")


def _settings() -> Settings:
    try:
        return get_settings()
    except ConfigError as error:
        Console(stderr=True).print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None


@commands.command()
def train(
    now: Annotated[
        str | None, typer.Option("--now", help="Train as of this time (ISO 8601; default: now).")
    ] = None,
    days: Annotated[
        int | None,
        typer.Option(
            "--days", help="Decisions from this many days back (OMNI_CHANNEL_TRAINING_DAYS)."
        ),
    ] = None,
    activate: Annotated[
        bool, typer.Option("--activate/--no-activate", help="Make the new model the active one.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the model card as JSON.")] = False,
) -> None:
    """Fit the channel model from logged decisions and their outcomes; register it."""
    # Imported here: training needs scikit-learn, which no other command should load.
    from omni_journey.channels.train import train_from_store

    settings = _settings()
    engine = open_store(settings.resolved_database_url)
    try:
        result = train_from_store(
            engine,
            models_dir=settings.home / "models",
            now=parse_time(now),
            days=days or settings.channel_training_days,
            attribution_hours=settings.channel_attribution_hours,
            min_conversions=settings.channel_min_conversions,
            activate=activate,
        )
    finally:
        engine.dispose()
    if result.model is None:
        Console(stderr=True).print(f"[yellow]no model trained:[/yellow] {result.reason}")
        raise typer.Exit(1)
    card = result.model.card
    if as_json:
        typer.echo(json.dumps(card, indent=2, sort_keys=True))
        return
    metrics = card["metrics"]
    console = Console()
    console.print(
        f"trained [bold]{card['version']}[/bold] on {result.decisions:,} sends "
        f"({card['data']['clicks']:,} clicked, {result.conversions:,} converted); "
        f"{'active' if activate else 'registered, not active'}; files in {result.path}"
    )
    table = Table(title="out-of-fold metrics")
    for column in ("head", "rows", "positives", "AUC", "log loss", "ECE"):
        table.add_column(column, justify="left" if column == "head" else "right")
    for head in ("click", "order_given_click", "converted_through_click"):
        m = metrics[head]
        auc = "-" if m.get("auc") is None else f"{m['auc']:.3f}"
        table.add_row(
            head,
            f"{int(m['rows']):,}",
            f"{int(m['positives']):,}",
            auc,
            f"{m['log_loss']:.4f}",
            f"{m['ece']:.4f}",
        )
    console.print(table)


def _print_evaluation(result: Evaluation) -> None:
    console = Console()
    ran = ", ".join(f"{k} {v:,}" for k, v in result.logged_policies.items())
    console.print(
        f"{result.decisions:,} best-channel decisions of {result.customers:,} customers "
        f"(policies that ran: {ran}); "
        f"reward = {result.value:g} x converted - cost, per 1,000 decisions"
    )
    table = Table(title="off-policy estimates (95% bootstrap intervals over customers)")
    for column in ("policy", "SNIPS", "doubly robust", "direct", "support", "ESS"):
        table.add_column(column, justify="left" if column == "policy" else "right")
    table.add_row(
        "logged (ran)",
        f"{result.logged:.1f} [{result.logged_low:.1f}, {result.logged_high:.1f}]",
        "",
        "",
        "1.00",
        f"{result.decisions:,}",
    )
    for e in result.estimates:
        table.add_row(
            e.policy,
            f"{e.snips:.1f} [{e.snips_low:.1f}, {e.snips_high:.1f}]",
            f"{e.dr:.1f} [{e.dr_low:.1f}, {e.dr_high:.1f}]",
            f"{e.dm:.1f}",
            f"{e.support:.2f}",
            f"{e.effective_sample_size:,.0f}",
        )
    console.print(table)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")


@commands.command()
def evaluate(
    policy: Annotated[
        list[str] | None,
        typer.Option(
            "--policy",
            help=f"A policy to estimate (repeatable): {', '.join(POLICY_NAMES)}. Default: all.",
        ),
    ] = None,
    now: Annotated[
        str | None, typer.Option("--now", help="Evaluate as of this time (default: now).")
    ] = None,
    days: Annotated[
        int | None, typer.Option("--days", help="Decisions from this many days back.")
    ] = None,
    bootstrap: Annotated[int, typer.Option("--bootstrap", help="Bootstrap resamples.")] = 500,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Estimate what channel policies would have earned on the logged decisions."""
    names = list(policy or POLICY_NAMES)
    unknown = [n for n in names if n not in POLICY_NAMES]
    if unknown:
        raise typer.BadParameter(f"unknown policy {unknown[0]!r}: one of {', '.join(POLICY_NAMES)}")
    # Imported here: scoring needs scikit-learn, which no other command should load.
    from omni_journey.channels.artefacts import ModelLoader
    from omni_journey.channels.evaluate import evaluate_logged
    from omni_journey.channels.learned import LearnedPolicy
    from omni_journey.channels.logged import load_logged

    settings = _settings()
    at = parse_time(now)
    learned = LearnedPolicy.from_settings(settings)
    engine = open_store(settings.resolved_database_url)
    notes: list[str] = []
    try:
        with engine.connect() as connection:
            logged = load_logged(
                connection,
                since=at - timedelta(days=days or settings.channel_training_days),
                until=at,
                attribution_hours=settings.channel_attribution_hours,
            )
            model = ModelLoader(settings.home / "models").get(connection)
    finally:
        engine.dispose()
    if "learned" in names and model is None:
        names.remove("learned")
        notes.append("no usable channel model: 'learned' left out (omni-journey train)")
    trained_until = model.data_until if model is not None else None
    if trained_until and logged.created_at and min(logged.created_at) <= trained_until:
        notes.append(
            f"the model was trained on decisions up to {trained_until.isoformat()}: "
            "its estimate on those is optimistic"
        )
    result = evaluate_logged(
        logged,
        names,
        value=settings.channel_conversion_value,
        costs=learned.costs,
        model=model,
        learned=learned,
        bootstrap=bootstrap,
        trained_at=at,
    )
    result.warnings = notes + result.warnings
    if as_json:
        data: dict[str, Any] = result.as_json()
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    _print_evaluation(result)
