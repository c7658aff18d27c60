"""The ``omni-journey`` command.

Each concern keeps its commands in its own module (``commands``, a ``typer.Typer``);
this module only lists them. A command's module is imported when that command runs or
prints its ``--help``, never to list the commands: ``omni-journey --help`` and every
command that neither trains nor scores start without scikit-learn, scipy, matplotlib
or Prefect (see :mod:`omni_journey.cli.lazy`, and tests/unit/test_startup.py).
"""

from __future__ import annotations

import typer

from omni_journey.cli.lazy import Entry, LazyGroup

__all__ = ["COMMANDS", "app", "main"]

#: Every top-level command, in the order ``--help`` lists them. ``help`` is the first
#: paragraph of the command's docstring (a test keeps them equal).
COMMANDS: tuple[Entry, ...] = (
    Entry(
        "demo",
        "demo_cmd",
        "Run a simulated shop through every journey in journeys/ for a month, on the "
        "embedded default (SQLite under OMNI_HOME/demo, the file outbox), with the Prefect "
        "flows doing the work (a temporary local Prefect server unless PREFECT_API_URL is "
        "set), and "
        "summarise; then write the report.",
    ),
    Entry(
        "validate",
        "spec_cmd",
        "Check journeys, segments and templates: every problem at once, with file:line:col, "
        "what was expected and a hint. Exit 1 on any error.",
    ),
    Entry(
        "schema",
        "spec_cmd",
        "The JSON Schema of journey and segment files, for editor autocompletion.",
    ),
    Entry(
        "customers", "customers_cmd", "Customer profiles: import them, show one customer's history."
    ),
    Entry("events", "ingest_cmd", "Behavioural events: bulk import."),
    Entry("track", "ingest_cmd", "Store one event and print its id."),
    Entry(
        "explain",
        "customers_cmd",
        "Why a customer got, or did not get, a journey's messages: every decision in order "
        "with the rule or guard that decided it and the data it used.",
    ),
    Entry(
        "serve",
        "serve_cmd",
        "Run the HTTP collector: Segment Spec /v1/track, identify, page, screen, alias, batch.",
    ),
    Entry(
        "run",
        "run_cmd",
        "One pass: enroll, advance every journey one step as far as it can go, dispatch.",
    ),
    Entry(
        "simulate",
        "run_cmd",
        "Replay a journey against given customers and events, with the same engine as "
        "production, in seconds: who enters, what is sent when on which channel, who "
        "converts, who exits and why. Nothing is sent and the store is not touched.",
    ),
    Entry(
        "preview",
        "render_cmd",
        "Render MESSAGE for a real customer: the email as an .html (and .eml) file under "
        "OMNI_HOME/previews/, the SMS with its encoding and segments, the push payload with "
        "its size, the WhatsApp text and template. Exit 1 if anything fails to render.",
    ),
    Entry(
        "dispatch",
        "dispatch_cmd",
        "Send due outbox messages once, through the providers OMNI_*_PROVIDER choose.",
    ),
    Entry(
        "messages",
        "messages_cmd",
        "Outbox messages: the ones in doubt after a sender died mid-call.",
    ),
    Entry("segments", "segments_cmd", "Segments: who is in them, what changed, purchase cycles."),
    Entry("backtest", "segments_cmd", "Back-test triggers on a history."),
    Entry(
        "train",
        "channels_cmd",
        "Fit the channel model from logged decisions and their outcomes; register it.",
    ),
    Entry(
        "evaluate",
        "channels_cmd",
        "Estimate what channel policies would have earned on the logged decisions.",
    ),
    Entry(
        "report",
        "report_cmd",
        "Write the report: per-journey funnels, conversions and holdout lift with 95% "
        "intervals, channel mix over time, delivery and suppression rates, and the channel "
        "policy's value vs baselines, as one HTML page with PNG charts. Counts only.",
    ),
    Entry(
        "deploy",
        "deploy_cmd",
        "Generate the advance deployment's event triggers in prefect.yaml from journeys/.",
    ),
    Entry("db", "db_cmd", "The store: schema migrations and where it lives."),
)


class _Commands(LazyGroup):
    entries = COMMANDS


app = typer.Typer(
    name="omni-journey",
    help="Omnichannel marketing journeys on Prefect.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_Commands,
)


@app.callback()
def _root() -> None:
    # A group needs a callback when none of its commands is registered on it directly.
    pass


def _register() -> None:
    """Kept for callers written when command modules registered themselves on import:
    the commands are now listed in :data:`COMMANDS` and imported on use."""


def main() -> None:
    """The ``omni-journey`` command. A setting that is missing or wrong (a
    :class:`ConfigError`, e.g. no ``OMNI_SECRET_KEY`` with a shared store) ends it with
    one line naming the variable and exit code 2; a database that goes away, refuses
    connections or stays locked ends it with one line and exit code 3; never a
    traceback."""
    try:
        app()
    except Exception as error:
        from rich.console import Console  # not before it is needed: start-up
        from rich.markup import escape

        from omni_journey.errors import ConfigError

        if isinstance(error, ConfigError):
            Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {escape(str(error))}")
            raise SystemExit(2) from None
        from sqlalchemy.exc import InterfaceError, OperationalError

        if not isinstance(error, OperationalError | InterfaceError):
            raise
        cause = str(error.orig or error).strip().splitlines()[0]
        Console(stderr=True, soft_wrap=True).print(
            f"[red]error:[/red] the database is unavailable ({escape(cause)}): this command "
            "stopped; what it committed is kept, and running it again once the database is "
            "back finishes the work"
        )
        raise SystemExit(3) from None
