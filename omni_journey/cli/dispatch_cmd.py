"""``omni-journey dispatch [--limit N]``: one pass of the outbox dispatcher."""

from __future__ import annotations

import importlib
import json
import os
import socket
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console

from omni_journey.cli import app
from omni_journey.delivery import CustomerView, OutboxRow, Renderer, dispatch, load_providers
from omni_journey.errors import ConfigError
from omni_journey.settings import Settings, get_settings
from omni_journey.store import open_store


def _renderer(settings: Settings) -> Renderer:
    """The project's templates, through ``omni_journey.render`` (imported on first use,
    so webhook-only outboxes dispatch without it)."""

    def render(message: OutboxRow, customer: CustomerView) -> Any:
        module: Any = importlib.import_module("omni_journey.render")
        context = module.RenderContext(
            customer=module.customer_profile(
                customer.id, customer.attributes, locale=customer.locale, timezone=customer.timezone
            ),
            journey={"key": message.journey_key, "step": message.step_id},
        )
        return module.render_message(
            settings.project_dir / "templates",
            message.message_key,
            message.channel,
            context,
            settings=settings,
        )

    return render


@app.command("dispatch")
def dispatch_cmd(
    limit: int | None = typer.Option(None, "--limit", min=1, help="Claim at most N messages."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    """Send due outbox messages once, through the providers OMNI_*_PROVIDER choose."""
    console = Console()
    try:
        settings = get_settings()
        providers = load_providers(settings)
    except ConfigError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    engine = open_store(settings.resolved_database_url)
    report = dispatch(
        engine,
        providers,
        _renderer(settings),
        now=datetime.now(UTC),
        settings=settings,
        worker_id=f"{socket.gethostname()}:{os.getpid()}"[:64],
        limit=limit,
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
