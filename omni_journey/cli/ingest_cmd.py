"""``omni-journey events import``, ``track``, and the ``customers import`` command
(listed in the ``customers`` group of :mod:`omni_journey.cli.customers_cmd`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import Engine

from omni_journey.ingest.announce import announce_stored, flush, last_event_seq
from omni_journey.ingest.intake import ImportFileError, ImportResult, import_file, ingest_events
from omni_journey.ingest.record_keys import describe
from omni_journey.settings import get_settings
from omni_journey.store import open_store

__all__ = ["commands", "customers_import", "events_import", "track"]

commands = typer.Typer()

events_app = typer.Typer(help="Behavioural events: bulk import.", no_args_is_help=True)
commands.add_typer(events_app, name="events")

FileArgument = Annotated[
    Path,
    typer.Argument(help="A JSON Lines (.jsonl, .json) or CSV (.csv) file.", show_default=False),
]
FormatOption = Annotated[
    str | None,
    typer.Option("--format", help="jsonl or csv; default: from the file's extension."),
]
StrictOption = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Reject a line with a key omni-journey does not read (reason unknown-field) "
        "instead of importing it without that key and warning.",
    ),
]

FORMATS_DOC = "docs/data-formats.md"

EXIT_UNREADABLE = 2


def _import(
    path: Path, kind: Literal["events", "customers"], file_format: str | None, strict: bool
) -> None:
    out = Console()
    err = Console(stderr=True)
    settings = get_settings()
    try:
        size = path.stat().st_size
    except OSError as error:
        err.print(f"[red]error:[/] {escape(str(path))}: cannot read the file ({error.strerror})")
        raise typer.Exit(EXIT_UNREADABLE) from None
    engine = open_store(settings.resolved_database_url)
    now = datetime.now(UTC)
    with engine.connect() as connection:
        before = last_event_seq(connection)
    columns = (
        TextColumn(f"importing {kind}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, console=err, transient=True) as progress:
            task = progress.add_task(kind, total=size or None)
            result = import_file(
                engine,
                path,
                kind,
                settings=settings,
                now=now,
                progress=lambda done: progress.update(task, completed=done),
                file_format=file_format,
                strict=strict,
            )
        if kind == "events":
            _announce(engine, now, before)
    except ImportFileError as error:
        err.print(f"[red]error:[/] {escape(str(error))}")
        raise typer.Exit(EXIT_UNREADABLE) from None
    finally:
        engine.dispose()
    _warn_unknown(err, result, kind)
    _report(out, result)


def _announce(engine: Engine, now: datetime, before: int) -> None:
    """Tell Prefect what was stored (one event per event name), so the journeys these
    events enter start within seconds; a no-op without ``PREFECT_API_URL``."""
    _, emitted = announce_stored(engine, received_at=now, after_seq=before, source="cli")
    if emitted:
        flush()


def _warn_unknown(
    console: Console, result: ImportResult, kind: Literal["events", "customers"]
) -> None:
    """One warning per line with keys omni-journey does not read (the first few), then
    how many lines had them: imported without those keys, never silently."""
    unknown = result.unknown
    if not unknown.lines:
        return
    for line, keys in unknown.samples:
        text = f"line {line}: unknown {'key' if len(keys) == 1 else 'keys'} {describe(keys, kind)}"
        console.print(f"[yellow]warning\\[unknown-field]:[/] {escape(text)}", soft_wrap=True)
    if unknown.lines > len(unknown.samples):
        console.print(f"  … and {unknown.lines - len(unknown.samples)} more lines", soft_wrap=True)
    counts = ", ".join(f"{key} on {n}" for key, n in sorted(unknown.per_key.items()))
    console.print(
        escape(
            f"{unknown.lines} {'line has' if unknown.lines == 1 else 'lines have'} keys "
            f"omni-journey does not read ({counts}): imported without them. The keys a "
            f"{'profile' if kind == 'customers' else 'event'} may have: {FORMATS_DOC}; "
            "--strict rejects such lines."
        ),
        soft_wrap=True,
    )


def _report(console: Console, result: ImportResult) -> None:
    console.print(
        f"accepted {result.accepted}, duplicates {result.duplicates}, rejected {result.rejected}"
        + (f", with unknown keys {result.unknown.lines}" if result.unknown.lines else "")
    )
    if result.rejects_path is not None:
        console.print(f"rejects written to {escape(str(result.rejects_path))}", soft_wrap=True)


def customers_import(
    path: FileArgument, file_format: FormatOption = None, strict: StrictOption = False
) -> None:
    """Import customer profiles: JSON Lines, one object a line, like
    {"customer_id": "c-42", "email": "ana@example.com", "consent": {"email": true},
    "attributes": {"first_name": "Ana"}}; or CSV with consent.<channel> and
    attributes.<key> columns. Every key: docs/data-formats.md in the omni-journey
    repository. Your own fields (first_name, tier) go under "attributes". Prints
    accepted / duplicates / rejected; rejected lines go to a rejects file with their
    line number and reason. A key omni-journey does not read ("id", "consents") is
    reported with its line, and the line imported without it (--strict rejects it). A
    profile that would merge two customers known by their own ids (say, two
    customer_ids sharing an email) is rejected as identity-conflict unless the line
    says "merge": true. Exit 0 even with rejects; exit 2 when the file cannot be read."""
    _import(path, "customers", file_format, strict)


@events_app.command("import")
def events_import(
    path: FileArgument, file_format: FormatOption = None, strict: StrictOption = False
) -> None:
    """Import events: JSON Lines, one object a line, like {"id": "evt-1", "name":
    "product.viewed", "customer_id": "c-42", "at": "2026-05-01T10:00:00Z",
    "properties": {"sku": "SERUM-30"}}; or CSV with id, name, customer_id, at,
    properties.<key> and identities.<kind> columns. Every key, the standard event
    names and the catalogue events: docs/data-formats.md in the omni-journey
    repository. Re-importing is a no-op: events already stored count as duplicates. A key
    omni-journey does not read is reported with its line and the line imported
    without it (--strict rejects it). Exit 0 even with rejects; exit 2 when the file
    cannot be read."""
    _import(path, "events", file_format, strict)


def _property(pair: str) -> tuple[str, Any]:
    key, sep, raw = pair.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"expected key=value, got {pair!r}", param_hint="--prop")
    try:
        return key, orjson.loads(raw)
    except orjson.JSONDecodeError:
        return key, raw


@commands.command()
def track(
    name: Annotated[str, typer.Argument(help="Event name, e.g. product.viewed.")],
    customer: Annotated[str, typer.Option("--customer", help="The customer's id.")],
    prop: Annotated[
        list[str] | None,
        typer.Option("--prop", help="A property as key=value (value read as JSON when it parses)."),
    ] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="When, ISO 8601 with a zone; default now.")
    ] = None,
    event_id: Annotated[
        str | None, typer.Option("--id", help="Event id (idempotency key); default a new one.")
    ] = None,
) -> None:
    """Store one event and print its id.

    An event's keys and the standard event names: docs/data-formats.md in the
    omni-journey repository."""
    settings = get_settings()
    properties = dict(_property(p) for p in prop or [])
    now = datetime.now(UTC)
    chosen_id = event_id or f"evt-{uuid.uuid4()}"
    record = {
        "id": chosen_id,
        "name": name,
        "customer_id": customer,
        "at": at or now,
        "properties": properties,
    }
    engine = open_store(settings.resolved_database_url)
    try:
        with engine.connect() as connection:
            before = last_event_seq(connection)
        result = ingest_events(engine, [record], now=now, settings=settings)
        _announce(engine, now, before)
    finally:
        engine.dispose()
    if result.rejected:
        reject = result.rejected[0]
        message = escape(f"error[{reject.reason}]: {reject.detail}")
        Console(stderr=True).print(f"[red]{message}[/]")
        raise typer.Exit(1)
    suffix = " (already stored)" if result.duplicates else ""
    Console().print(f"{chosen_id}{suffix}", soft_wrap=True)
