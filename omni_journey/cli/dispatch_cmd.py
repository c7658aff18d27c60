"""``omni-journey dispatch [--limit N] [--shard I/N]``: one pass of the outbox dispatcher."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import typer
from rich.console import Console

from omni_journey.delivery import load_providers
from omni_journey.errors import ConfigError
from omni_journey.service.pipeline import dispatch_due
from omni_journey.settings import get_settings
from omni_journey.store import open_store
from omni_journey.store.shards import ALL, Shard, ShardError

commands = typer.Typer()


@commands.command("dispatch")
def dispatch_cmd(
    limit: int | None = typer.Option(None, "--limit", min=1, help="Claim at most N messages."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
    shard: str | None = typer.Option(
        None,
        "--shard",
        metavar="I/N",
        help=(
            "Send only the messages to shard I of N of the customers: N dispatchers, "
            "--shard 1/N to N/N, never claim one message twice (with or without shards); "
            "the shards split the outbox between them evenly. Default: every message."
        ),
    ),
) -> None:
    """Send due outbox messages once, through the providers OMNI_*_PROVIDER choose.

    Several dispatchers may run at once; on PostgreSQL the rate limits
    (OMNI_RATE_LIMITS) hold for all of them together."""
    try:
        part = ALL if shard is None else Shard.parse(shard)
    except ShardError as error:
        raise typer.BadParameter(str(error), param_hint="--shard") from None
    console = Console()
    try:
        settings = get_settings()
        providers = load_providers(settings)
    except ConfigError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    engine = open_store(settings.resolved_database_url)
    report = dispatch_due(
        engine, settings, now=datetime.now(UTC), limit=limit, providers=providers, shard=part
    )
    engine.dispose()
    if as_json:
        print(json.dumps(report.as_dict(), sort_keys=True))  # noqa: T201
        return
    console.print(report.summary())
    for provider, counts in sorted(report.by_provider.items()):
        console.print(f"  {provider}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for code, count in sorted(report.errors.items()):
        console.print(f"  error {code}: {count}")
