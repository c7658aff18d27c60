"""The store of the commands that only read (``preview``, ``customers show``,
``explain``, ``messages``, ``report``): never created by them.

Opening a SQLite store creates the file when it is missing; a command that only reads
would then answer "there is no customer" about an empty store made on the spot, while
the data is elsewhere (the demo writes to ``<OMNI_HOME>/demo``). These commands stop
instead, naming the file they looked for and, when there is one, the demo's store.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from sqlalchemy import Engine

from omni_journey.errors import ConfigError
from omni_journey.settings import Settings
from omni_journey.store.db import StoreNotFoundError, open_existing_store

__all__ = ["open_store_for_reading"]


def _shown(path: Path) -> str:
    """``path`` relative to the working folder when it is under it."""
    absolute = path.absolute()
    try:
        return absolute.relative_to(Path.cwd()).as_posix() or "."
    except ValueError:
        return absolute.as_posix()


def open_store_for_reading(settings: Settings) -> Engine:
    """The settings' store, which must exist: :class:`ConfigError` naming ``OMNI_HOME``
    (and the demo's store when there is one) if its SQLite file does not."""
    try:
        return open_existing_store(settings.resolved_database_url)
    except StoreNotFoundError as error:
        demo = settings.home / "demo"
        hint = (
            f"the demo's store is at {_shown(demo)}: set OMNI_HOME={shlex.quote(_shown(demo))}"
            if (demo / "omni.db").is_file()
            else "set OMNI_HOME (or OMNI_DATABASE_URL) to where your store is, or run "
            "omni-journey demo first"
        )
        raise ConfigError("OMNI_HOME", f"no store at {_shown(error.path)}", hint) from None
