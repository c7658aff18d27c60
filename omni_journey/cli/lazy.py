"""A command group that imports a command's module only when that command is used.

Why: importing every command module to print ``omni-journey --help`` pulled in
scikit-learn, scipy and the store (about 2.5 s of CPU and 190 MiB per call). The group
lists each command from an :class:`Entry` (its name, its module and its one-line help,
written down in :data:`omni_journey.cli.COMMANDS` and kept equal to the command's
docstring by a test) and imports the module only when the command is resolved to run
or to print its own ``--help``. Each command module builds
its own ``typer.Typer`` named ``commands``; no module registers itself by import.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:
    # Typer vendors its own copy of click: these are its types, not the click package's.
    from typer._click import Command, Context

__all__ = ["Entry", "LazyGroup", "load", "module_group"]

PACKAGE = "omni_journey.cli"


@dataclass(frozen=True)
class Entry:
    """One top-level command: ``module`` is relative to :mod:`omni_journey.cli`."""

    name: str
    module: str
    help: str


@cache
def module_group(module: str) -> TyperGroup:
    """The click group of one command module's ``commands`` (built once per process)."""
    commands = importlib.import_module(f"{PACKAGE}.{module}").commands
    if not isinstance(commands, typer.Typer):
        raise TypeError(f"{PACKAGE}.{module}.commands is not a typer.Typer")
    return typer.main.get_group(commands)


def load(entry: Entry) -> Command:
    """The real command behind ``entry``: imports its module."""
    command = module_group(entry.module).commands.get(entry.name)
    if command is None:
        raise LookupError(f"{PACKAGE}.{entry.module} has no command {entry.name!r}")
    return command


class _Listed(TyperCommand):
    """Stands in for a command in the group's help listing; becomes the real command as
    soon as a context is made for it (``group.invoke`` makes one before it runs it)."""

    def __init__(self, entry: Entry) -> None:
        super().__init__(entry.name, help=entry.help, short_help=entry.help)
        self.entry = entry

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: Context | None = None,
        **extra: Any,
    ) -> Context:
        return load(self.entry).make_context(info_name, args, parent=parent, **extra)


class LazyGroup(TyperGroup):
    """A :class:`TyperGroup` whose commands are the subclass's ``entries``, in order."""

    entries: ClassVar[tuple[Entry, ...]] = ()

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for entry in self.entries:
            self.commands.setdefault(entry.name, _Listed(entry))
