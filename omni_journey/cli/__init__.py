"""The ``omni-journey`` command. Each concern registers its commands from its own module."""

from __future__ import annotations

import typer

__all__ = ["app", "main"]

app = typer.Typer(
    name="omni-journey",
    help="Omnichannel marketing journeys on Prefect.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Imported for their side effect of adding commands to ``app``.
    from omni_journey.cli import (  # noqa: F401
        channels_cmd,
        db_cmd,
        demo_cmd,
        deploy_cmd,
        dispatch_cmd,
        ingest_cmd,
        render_cmd,
        report_cmd,
        run_cmd,
        segments_cmd,
        serve_cmd,
        spec_cmd,
    )


def main() -> None:
    _register()
    app()
