"""``omni-journey db upgrade|info``: the store's schema."""

from __future__ import annotations

import typer
from rich.console import Console

from omni_journey.settings import get_settings
from omni_journey.store import open_store

commands = typer.Typer()

db_app = typer.Typer(help="The store: schema migrations and where it lives.", no_args_is_help=True)
commands.add_typer(db_app, name="db")


@db_app.command("upgrade")
def upgrade_cmd() -> None:
    """Create the store, or migrate it to the latest schema."""
    settings = get_settings()
    engine = open_store(settings.resolved_database_url)
    Console().print(
        f"store is at the latest schema ({engine.url.render_as_string(hide_password=True)})"
    )
