"""``omni-journey messages in-doubt [--json]``: the outbox as an operator checks it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from omni_journey.cli.reading import open_store_for_reading
from omni_journey.settings import Settings, get_settings

commands = typer.Typer()

messages_app = typer.Typer(
    help="Outbox messages: the ones in doubt after a sender died mid-call.",
    no_args_is_help=True,
)
commands.add_typer(messages_app, name="messages")


def _provider(settings: Settings, channel: str, recorded: str | None) -> str | None:
    """The provider recorded on the row, else the one the channel's setting names."""
    if recorded:
        return recorded
    chosen = getattr(settings, f"{channel}_provider", None)
    return str(chosen) if chosen else None


@messages_app.command("in-doubt")
def in_doubt_cmd(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object: the messages and a count.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="List at most N messages.")] = 1000,
) -> None:
    """List the messages in doubt: a sender died during their provider call, so the
    provider (SES, SMS, FCM, WhatsApp: none takes an idempotency key) may or may not have
    delivered them. Ids, journey, step, channel, provider and since when; never an address.
    Exit 0 with none, 1 with some."""
    from omni_journey.delivery.in_doubt import list_in_doubt

    settings = get_settings()
    engine = open_store_for_reading(settings)
    try:
        with engine.connect() as connection:
            found = list_in_doubt(connection, now=datetime.now(UTC), limit=limit)
    finally:
        engine.dispose()
    rows = [
        item.as_dict() | {"provider": _provider(settings, item.channel, item.provider)}
        for item in found
    ]
    if as_json:
        print(json.dumps({"in_doubt": rows, "count": len(rows)}, sort_keys=True))  # noqa: T201
    else:
        console = Console(soft_wrap=True)
        if not rows:
            console.print("no message in doubt")
        for row in rows:
            console.print(
                escape(
                    f"message {row['id']}  {row['state']}  since {row['since'] or '?'}  "
                    f"journey {row['journey'] or '-'}  step {row['step'] or '-'}  "
                    f"enrollment {row['enrollment_id'] or '-'}  {row['channel']} "
                    f"via {row['provider'] or '?'}"
                )
            )
        if rows:
            console.print(
                f"{len(rows)} in doubt: check each with the provider (SES and FCM messages "
                "carry the outbox id), then requeue what never arrived"
            )
    if rows:
        raise typer.Exit(1)
