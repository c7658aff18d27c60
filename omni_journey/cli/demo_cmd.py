"""``omni-journey demo``: the main job on the embedded default."""

from __future__ import annotations

from rich.console import Console

from omni_journey.cli import app
from omni_journey.settings import get_settings
from omni_journey.store import open_store


@app.command()
def demo() -> None:
    """Run the demo shop on the embedded default (SQLite under OMNI_HOME, file outbox)."""
    console = Console()
    settings = get_settings()
    engine = open_store(settings.resolved_database_url)
    console.print(f"store ready: {engine.url.render_as_string(hide_password=True)}")
