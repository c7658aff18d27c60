"""``omni-journey validate`` and ``omni-journey schema``: the journey language."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from omni_journey.render import check_templates
from omni_journey.runner.versions import in_flight_diagnostics, in_flight_problems
from omni_journey.settings import Settings, get_settings
from omni_journey.spec.conditions import KEY_PATTERN
from omni_journey.spec.diagnostics import Diagnostic, format_diagnostics, summary
from omni_journey.spec.project import (
    EVENTS_FILE,
    JOURNEYS_DIR,
    SEGMENTS_DIR,
    TEMPLATES_DIR,
    check_paths,
    load_project,
)
from omni_journey.spec.schema import stale_schemas, write_schemas
from omni_journey.store.db import create_store_engine

commands = typer.Typer()


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


def _message_folders(targets: list[Path]) -> dict[Path, set[str] | None]:
    """templates folder -> the messages to check in it (``None``: every one)."""
    found: dict[Path, set[str] | None] = {}
    for target in (t.resolve() for t in targets):
        templates: Path | None = None
        key: str | None = None
        if target.is_dir() and target.name == TEMPLATES_DIR:
            templates = target
        elif target.is_dir() and (target / TEMPLATES_DIR).is_dir():
            templates = target / TEMPLATES_DIR
        else:
            templates = next((p for p in target.parents if p.name == TEMPLATES_DIR), None)
            if templates is not None:
                key = target.relative_to(templates).parts[0]
        if templates is None:
            continue
        if key is None:
            found[templates] = None
        else:
            keys = found.setdefault(templates, set())
            if keys is not None and re.fullmatch(KEY_PATTERN, key):
                keys.add(key)  # a file in _partials/ is checked with the partials
    return found


def _shown(path: Path) -> str:
    try:
        return path.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _check_templates(targets: list[Path], settings: Settings) -> tuple[list[Diagnostic], int]:
    """What the render layer finds in the message folders under ``targets``."""
    found: list[Diagnostic] = []
    files = 0
    for templates, keys in _message_folders(targets).items():
        found += check_templates(templates, keys, settings=settings, shown_dir=_shown(templates))
        folders = [templates] if keys is None else [templates / k for k in sorted(keys)]
        files += sum(1 for folder in folders for f in folder.rglob("*") if f.is_file())
    return found, files


def _store_engine(settings: Settings) -> Engine | None:
    """An engine on the store when it exists; never creates one (nor upgrades it)."""
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if not path or path == ":memory:" or not Path(path).is_file():
            return None
    return create_store_engine(url)


def _check_in_flight(settings: Settings, project: Path, targets: list[Path]) -> list[Diagnostic]:
    """``removed-step-in-use`` for the project's journeys under ``targets``, when there
    is a store to look in (an unreachable or older store is skipped with a note)."""
    wanted = [t.resolve() for t in targets]
    journeys_dir = (project / JOURNEYS_DIR).resolve()
    engine = _store_engine(settings)
    if engine is None:
        return []
    journeys = load_project(project).journeys
    chosen = {
        key: file
        for key in journeys
        if (file := journeys_dir / f"{key}.yaml").is_file()
        and any(t == file or t in file.parents for t in wanted)
    }
    try:
        if not chosen:
            return []
        with engine.connect() as connection:
            problems = in_flight_problems(connection, {k: journeys[k] for k in chosen})
    except SQLAlchemyError as error:
        typer.echo(
            f"note: store not checked for customers in flight ({type(error).__name__})", err=True
        )
        return []
    finally:
        engine.dispose()
    return [
        replace(d, path=_shown(chosen[key]))
        for d, (key, _, _) in zip(in_flight_diagnostics(problems), problems, strict=True)
    ]


def _default_paths(project: Path) -> list[Path]:
    candidates = [project / JOURNEYS_DIR, project / SEGMENTS_DIR, project / TEMPLATES_DIR]
    candidates.append(project / EVENTS_FILE)
    return [p for p in candidates if p.exists()]


@commands.command()
def validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Files or folders to check (default: journeys/ segments/ templates/ and "
            "events.yaml under OMNI_PROJECT_DIR).",
            exists=True,
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        OutputFormat,
        typer.Option("--format", help="text for people, json for scripts and editors."),
    ] = OutputFormat.text,
) -> None:
    """Check journeys, segments and templates: every problem at once, with
    file:line:col, what was expected and a hint. Exit 1 on any error."""
    settings = get_settings()
    project = settings.project_dir
    targets = list(paths) if paths else _default_paths(project)
    if not targets:
        typer.echo(
            f"nothing to validate: no {JOURNEYS_DIR}/, {SEGMENTS_DIR}/ or {TEMPLATES_DIR}/ "
            f"under {project.resolve()} (set OMNI_PROJECT_DIR, or pass paths)",
            err=True,
        )
        raise typer.Exit(2)
    result = check_paths(targets, root=None if paths else project)
    in_templates, template_files = _check_templates(targets, settings)
    in_flight = _check_in_flight(settings, project, targets)
    diagnostics = sorted(set(result.diagnostics) | set(in_templates) | set(in_flight))
    files = result.files + template_files
    errors = sum(d.is_error for d in diagnostics)
    if output is OutputFormat.json:
        payload = {
            "ok": errors == 0,
            "files": files,
            "errors": errors,
            "warnings": len(diagnostics) - errors,
            "diagnostics": [d.to_dict() for d in diagnostics],
        }
        typer.echo(json.dumps(payload, indent=2))
    else:
        if diagnostics:
            typer.echo(format_diagnostics(diagnostics))
            typer.echo("")
        typer.echo(summary(diagnostics, files))
    raise typer.Exit(1 if errors else 0)


@commands.command()
def schema(
    write: Annotated[
        bool, typer.Option("--write", help="Regenerate the schema files from the models.")
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 if the schema files are stale (the default).")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder of the schema files (default: schemas/ in the project)."),
    ] = None,
) -> None:
    """The JSON Schema of journey and segment files, for editor autocompletion."""
    if write and check:
        typer.echo("use --write or --check, not both", err=True)
        raise typer.Exit(2)
    directory = out if out is not None else get_settings().project_dir / "schemas"
    if write:
        for file in write_schemas(directory):
            typer.echo(f"wrote {file}")
        return
    stale = stale_schemas(directory)
    for name in stale:
        typer.echo(f"stale: {directory / name} (run omni-journey schema --write)")
    if stale:
        raise typer.Exit(1)
    typer.echo(f"schemas in {directory} match the models")
