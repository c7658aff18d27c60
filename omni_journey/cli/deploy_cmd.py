"""``omni-journey deploy [--check]``: journey triggers in ``prefect.yaml`` from ``journeys/``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from omni_journey.errors import ConfigError
from omni_journey.service.deploy import PrefectYamlError, plan_triggers, write_triggers
from omni_journey.settings import get_settings
from omni_journey.spec.diagnostics import format_diagnostics
from omni_journey.spec.project import load_project

commands = typer.Typer()


@commands.command("deploy")
def deploy_cmd(
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Change nothing; exit 1 and print what to add when prefect.yaml is stale.",
        ),
    ] = False,
    prefect_file: Annotated[
        Path | None,
        typer.Option(
            "--prefect-file",
            help="The prefect.yaml to update (default: prefect.yaml in OMNI_PROJECT_DIR).",
        ),
    ] = None,
) -> None:
    """Generate the advance deployment's event triggers in prefect.yaml from journeys/.

    Then deploy with: prefect --no-prompt deploy --all
    """
    try:
        settings = get_settings()
    except ConfigError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    project = load_project(settings.project_dir)
    if project.errors:
        typer.echo(format_diagnostics(project.errors), err=True)
        typer.echo("error: fix the journeys first (an invalid journey never deploys)", err=True)
        raise typer.Exit(1)
    path = prefect_file or settings.project_dir / "prefect.yaml"
    try:
        plan = plan_triggers(path, project.journeys)
    except PrefectYamlError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    if check:
        typer.echo(plan.describe())
        if not plan.ok:
            raise typer.Exit(1)
        return
    if write_triggers(plan):
        typer.echo(
            f"{path}: wrote {len(plan.expected)} journey triggers "
            f"(+{len(plan.missing)} new or changed, -{len(plan.stale)} removed)"
        )
    else:
        typer.echo(plan.describe())
    typer.echo("next: prefect --no-prompt deploy --all")
