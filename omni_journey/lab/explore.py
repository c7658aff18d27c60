"""The demo's closing lines: the exact commands that explore what it did.

The demo writes to its own store (``<OMNI_HOME>/demo``), not to the default one, so
every command names it (``OMNI_HOME=.omni/demo ...``); the customer shown is one who got
messages (the most, ties broken by id), and the message and journey are that customer's
last. ``tests/integration/test_demo_explore.py`` runs the lines as printed.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, and_, func, select

from omni_journey.store.core import MESSAGES

__all__ = ["Exploration", "explore_commands", "program", "shown_path"]


@dataclass(frozen=True)
class Exploration:
    """One closing line: what it shows, and the shell command that shows it."""

    label: str
    command: str
    after: str = ""  # what to do once it runs (open a page, ...)


def shown_path(path: Path) -> str:
    """``path`` relative to the working folder when it is under it, else absolute."""
    absolute = path.absolute()  # not resolved: a venv's python is a symlink
    try:
        relative = absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return absolute.as_posix()
    return relative or "."


def program() -> str:
    """How to call ``omni-journey`` again the way this process was called: the bare
    name when it is on the PATH, else its path (``.venv/bin/omni-journey`` after the
    README's first command), or ``python -m omni_journey`` with this interpreter."""
    called = Path(sys.argv[0])
    if called.name == "__main__.py":
        return f"{shlex.quote(shown_path(Path(sys.executable)))} -m omni_journey"
    found = shutil.which(called.name)
    if found is not None and Path(found).resolve() == called.resolve():
        return called.name
    return shlex.quote(shown_path(called))


def _featured(engine: Engine) -> tuple[str, str, str] | None:
    """(customer id, message key, journey key): the customer who got the most messages
    (ties: the smallest id), with their last message."""
    sent = and_(MESSAGES.c.status == "sent", MESSAGES.c.channel != "webhook")
    with engine.connect() as connection:
        top = connection.execute(
            select(MESSAGES.c.customer_id)
            .where(sent)
            .group_by(MESSAGES.c.customer_id)
            .order_by(func.count().desc(), MESSAGES.c.customer_id)
            .limit(1)
        ).scalar_one_or_none()
        if top is None:
            return None
        last = connection.execute(
            select(MESSAGES.c.message_key, MESSAGES.c.journey_key)
            .where(and_(sent, MESSAGES.c.customer_id == top))
            .order_by(MESSAGES.c.sent_at.desc(), MESSAGES.c.id.desc())
            .limit(1)
        ).one()
    return str(top), str(last.message_key), str(last.journey_key)


def explore_commands(
    engine: Engine, home: Path, *, report: Path, command: str | None = None
) -> list[Exploration]:
    """The closing lines for a demo whose home is ``home`` (its store and outbox) and
    whose report page is ``report``."""
    prefix = f"OMNI_HOME={shlex.quote(shown_path(home))}"
    if os.environ.get("OMNI_DATABASE_URL"):  # it would win over OMNI_HOME's store
        database = f"sqlite:///{shown_path(home / 'omni.db')}"
        prefix += f" OMNI_DATABASE_URL={shlex.quote(database)}"
    run = f"{prefix} {command or program()}"
    outbox = shlex.quote(shown_path(home / "outbox"))
    lines = [Exploration("the messages, one file each", f"ls {outbox}/*")]
    featured = _featured(engine)
    if featured is not None:
        customer, message, journey = featured
        who = shlex.quote(customer)
        lines += [
            Exploration("one customer's timeline across channels", f"{run} customers show {who}"),
            Exploration(
                "why they got each message",
                f"{run} explain {who} --journey {shlex.quote(journey)}",
            ),
            Exploration(
                "their last message, rendered again",
                f"{run} preview {shlex.quote(message)} --customer {who}",
            ),
        ]
    token = secrets.token_urlsafe(18)
    lines += [
        Exploration(
            "the report (the demo wrote it already; this writes it again)",
            f"{run} report",
            f"then open {shown_path(report)}",
        ),
        Exploration(
            "the console",
            f"{prefix} OMNI_CONSOLE_TOKEN={token} {command or program()} serve",
            "then open http://127.0.0.1:8765/console/ (any user name, the token as password)",
        ),
    ]
    return lines
