"""``omni-journey customers``: import profiles (:mod:`omni_journey.cli.ingest_cmd`),
show one customer's history across channels, export everything held about them or
erase them (:mod:`omni_journey.privacy`); ``omni-journey explain``: one customer's
decisions in one journey."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from omni_journey.cli.ingest_cmd import customers_import
from omni_journey.cli.reading import open_store_for_reading
from omni_journey.errors import ConfigError, SpecError
from omni_journey.history import (
    CustomerHistory,
    Decision,
    TimelineItem,
    find_customer,
    journey_decisions,
    load_history,
    why_not_entered,
)
from omni_journey.settings import get_settings

__all__ = ["commands"]

commands = typer.Typer()
customers_app = typer.Typer(
    help="Customer profiles: import them, show one customer's history.", no_args_is_help=True
)
KeyArgument = Annotated[
    str,
    typer.Argument(
        help="A customer id, email, phone number, push token, external or anonymous id.",
        show_default=False,
    ),
]
commands.add_typer(customers_app, name="customers")
customers_app.command("import")(customers_import)

EXIT_NOT_FOUND = 1


def _at_column() -> Column:
    """A time column that is never cut: the time is what a reader scans for."""
    return Column("at", no_wrap=True, min_width=25)


@customers_app.command("show")
def show(
    key: KeyArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Timeline items a page.")] = 50,
    offset: Annotated[
        int, typer.Option("--offset", min=0, help="Skip this many of the newest items.")
    ] = 0,
) -> None:
    """One customer's profile, identities (merged ids included), consent per channel
    with when and how it changed, suppressions, and one timeline across channels, newest
    first: events in, messages out with their status, every journey decision with its
    reason, and consent changes. Exit 1 when no customer matches KEY."""
    settings = get_settings()
    engine = open_store_for_reading(settings)
    try:
        with engine.connect() as connection:
            customer = find_customer(connection, key, settings.default_region)
            history = None
            if customer is not None:
                history = load_history(connection, customer, limit=limit, offset=offset)
    finally:
        engine.dispose()
    if history is None:
        Console(stderr=True).print("[red]no customer matches that key[/red]")
        raise typer.Exit(EXIT_NOT_FOUND)
    if as_json:
        print(json.dumps(history.as_dict(), ensure_ascii=False, sort_keys=True))  # noqa: T201
        return
    _print(Console(), history)


def _summary(item: TimelineItem) -> str:
    detail = item.detail
    if item.kind == "message":
        text = str(detail.get("status"))
        if detail.get("provider_message_id"):
            text += f" ({detail['provider']} {detail['provider_message_id']})"
        if detail.get("error"):
            text += f": {detail['error']}"
        return text
    if item.kind == "journey":
        text = str(detail.get("reason") or "")
        until = (detail.get("inputs") or {}).get("until")
        return f"{text} until {until}" if item.name == "deferred" and until else text
    if item.kind == "consent":
        return f"{_consent_word(detail.get('previous'))} -> {item.name} ({detail.get('source')})"
    properties: dict[str, Any] = dict(detail.get("properties") or {})
    return json.dumps(properties, ensure_ascii=False, sort_keys=True)[:120]


def _consent_word(granted: bool | None) -> str:
    return "-" if granted is None else "granted" if granted else "withdrawn"


def _print(console: Console, history: CustomerHistory) -> None:
    profile = history.customer
    console.print(f"[bold]{escape(str(profile['customer_id']))}[/bold]")
    for name in ("email", "phone", "timezone", "locale"):
        if profile.get(name):
            console.print(f"  {name}: {escape(str(profile[name]))}")
    if profile.get("attributes"):
        attributes = json.dumps(profile["attributes"], ensure_ascii=False, sort_keys=True)
        console.print(f"  attributes: {escape(attributes)}")
    if history.merged_ids:
        console.print(f"  merged into this customer: {escape(', '.join(history.merged_ids))}")

    identities = Table("identity", "value", "since", title="identities")
    for identity in history.identities:
        identities.add_row(*(escape(str(identity[k])) for k in ("kind", "value", "since")))
    console.print(identities)

    consent = Table("channel", "consent", "how", "since", "changes", title="consent")
    for channel, state in history.consent.items():
        changes = "\n".join(
            f"{change['at']} {_consent_word(change['value'])} ({change['source'] or '?'})"
            for change in state.get("history", [])
        )
        consent.add_row(
            channel,
            _consent_word(state["granted"]),
            escape(str(state["source"] or "")),
            str(state["since"] or ""),
            escape(changes),
        )
    console.print(consent)
    if history.suppressions:
        suppressed = Table("channel", "address", "reason", "since", title="suppressions")
        for row in history.suppressions:
            suppressed.add_row(*(escape(str(row[k])) for k in ("channel", "address", "reason",
                                                                "since")))  # fmt: skip
        console.print(suppressed)

    timeline = Table(
        _at_column(), "kind", "name", "channel", "journey / step", "detail", title="timeline"
    )
    for item in history.timeline:
        where = "/".join(p for p in (item.journey, item.step) if p)
        timeline.add_row(
            item.at.isoformat(timespec="seconds"),
            item.kind,
            escape(item.name),
            item.channel or "",
            escape(where),
            escape(_summary(item)),
        )
    console.print(timeline)
    if history.more:
        following = history.offset + len(history.timeline)
        console.print(f"more: --offset {following}")


@customers_app.command("export")
def export(
    key: KeyArgument,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the JSON to FILE (mode 0600), not stdout."),
    ] = None,
) -> None:
    """Everything stored about one customer, as one JSON object (right of access):
    profile, identities (merged customers' too), consent with its history,
    suppressions, events with their properties, messages with what was rendered,
    enrollments, decisions, segments and purchase cycles. Exit 1 when no customer
    matches KEY."""
    from omni_journey.privacy import export_customer

    settings = get_settings()
    engine = open_store_for_reading(settings)
    try:
        document = export_customer(engine, settings, key, now=datetime.now(UTC))
    finally:
        engine.dispose()
    if document is None:
        Console(stderr=True).print("[red]no customer matches that key[/red]")
        raise typer.Exit(EXIT_NOT_FOUND)
    text = json.dumps(document, ensure_ascii=False, sort_keys=True, indent=2) + "\n"
    if output is None:
        print(text, end="")  # noqa: T201
        return
    descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    Console(stderr=True).print(f"written to {escape(str(output))}")


@customers_app.command("erase")
def erase(
    key: KeyArgument,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Erase one customer everywhere omni-journey writes (right to erasure): profile,
    identities, consent, event properties, outbox messages' content and files, previews,
    rejects lines. Anonymous counts stay under an opaque id, so reports add up; queued
    messages are cancelled. Safe to repeat: a key nobody matches erases nothing (exit
    0), and an erasure a crash interrupted is finished by the next run."""
    from omni_journey.privacy import erase_customer

    if not yes and not typer.confirm("Erase this customer's personal data everywhere?"):
        raise typer.Exit(1)
    settings = get_settings()
    engine = open_store_for_reading(settings)
    try:
        result = erase_customer(engine, settings, key, now=datetime.now(UTC))
    finally:
        engine.dispose()
    if as_json:
        print(json.dumps(result.as_dict(), sort_keys=True))  # noqa: T201
        return
    console = Console()
    if not result.erased:
        console.print("no customer matches that key: nothing to erase (never known, or erased)")
        return
    counts = ", ".join(f"{name} {count}" for name, count in sorted(result.counts.items()) if count)
    console.print(f"erased; recorded as {result.erasure_id}: {counts}")


@commands.command("explain")
def explain(
    key: KeyArgument,
    journey: Annotated[
        str, typer.Option("--journey", help="The journey's key (its file name in journeys/).")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Why a customer got, or did not get, a journey's messages: every decision in order
    with the rule or guard that decided it and the data it used.

    Entered, refused at entry (which rule), waiting (at which delay or wait_for), sent
    (channel, policy, scores, propensity), skipped (consent, suppression, unreachable,
    cap, holdout...), deferred (quiet hours or cap, until when), exited (why), converted
    (which event). For a customer with no decision, the rule that keeps them out. Exit 1
    when no customer matches KEY or the journey does not exist."""
    from omni_journey.service.pipeline import load_valid_project

    err = Console(stderr=True)
    try:
        settings = get_settings()
        project = load_valid_project(settings)
    except (ConfigError, SpecError) as error:
        err.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(2) from None
    spec = project.journeys.get(journey)
    engine = open_store_for_reading(settings)
    try:
        with engine.connect() as connection:
            customer = find_customer(connection, key, settings.default_region)
            if customer is None:
                err.print("[red]no customer matches that key[/red]")
                raise typer.Exit(EXIT_NOT_FOUND)
            ids = [str(customer.id), *load_history(connection, customer, limit=1).merged_ids]
            decisions = journey_decisions(connection, ids, journey, spec)
            outside = None
            if not decisions and spec is not None:
                outside = why_not_entered(connection, ids, spec)
    finally:
        engine.dispose()
    if spec is None and not decisions:
        err.print(f"[red]no journey {escape(journey)} in journeys/ and no decision for it[/red]")
        raise typer.Exit(EXIT_NOT_FOUND)
    document: dict[str, Any] = {
        "customer_id": str(customer.id),
        "journey": journey,
        "decisions": [d.as_dict() for d in decisions],
    }
    if outside is not None:
        reason, inputs = outside
        document["not_entered"] = {"reason": reason, "inputs": inputs}
    if as_json:
        print(json.dumps(document, ensure_ascii=False, sort_keys=True))  # noqa: T201
        return
    _print_decisions(Console(), document, decisions)


def _print_decisions(console: Console, document: dict[str, Any], decisions: list[Decision]) -> None:
    console.print(
        f"[bold]{escape(document['customer_id'])}[/bold] in {escape(document['journey'])}"
    )
    if "not_entered" in document:
        outside = document["not_entered"]
        inputs = json.dumps(outside["inputs"], ensure_ascii=False, sort_keys=True)
        console.print(f"never entered: {outside['reason']} {escape(inputs)}")
        return
    table = Table(
        _at_column(), "step", "outcome", "reason", "data", title="decisions, oldest first"
    )
    for decision in decisions:
        data = json.dumps(decision.inputs, ensure_ascii=False, sort_keys=True, default=str)
        if decision.event_id:  # the event that entered, ended or converted it
            data = f"event {decision.event_id} {data}"
        table.add_row(
            decision.at.isoformat(timespec="seconds"),
            escape(decision.step or ""),
            decision.outcome + (" (holdout)" if decision.holdout else ""),
            escape(decision.reason or ""),
            escape(data[:300]),
        )
    console.print(table)
