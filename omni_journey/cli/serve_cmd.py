"""``omni-journey serve``: the HTTP collector (Segment Spec) on uvicorn."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console

from omni_journey.settings import get_settings
from omni_journey.store import open_store

commands = typer.Typer()


def _now() -> datetime:
    return datetime.now(UTC)


@commands.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.", min=1, max=65535)] = 8765,
    log_level: Annotated[
        str, typer.Option(help="uvicorn log level: critical, error, warning, info, debug.")
    ] = "info",
) -> None:
    """Run the HTTP collector: Segment Spec /v1/track, identify, page, screen, alias, batch.

    Sources authenticate with a write key from OMNI_WRITE_KEYS (HTTP basic-auth user).
    """
    # Imported here so that every other command starts without the web stack.
    import uvicorn

    from omni_journey.collector.app import create_app

    settings = get_settings()
    engine = open_store(settings.resolved_database_url)
    console = Console(stderr=True, soft_wrap=True)
    if not settings.accepted_write_keys:
        console.print(
            "[yellow]warning:[/] OMNI_WRITE_KEYS is empty: the collector refuses every "
            "request (401) until you set it"
        )
    console.print(
        f"collector for {engine.url.render_as_string(hide_password=True)} on http://{host}:{port}"
    )
    try:
        uvicorn.run(
            create_app(engine, settings, _now),
            host=host,
            port=port,
            log_level=log_level,
            ws="none",
            server_header=False,
        )
    finally:
        engine.dispose()
