"""The one place omni-journey builds a Jinja environment.

Marketer templates are untrusted code: they run in Jinja's immutable sandbox (no
``__class__``, no ``.append``, ranges capped) under a render budget of time and size
(:mod:`omni_journey.render.sandbox`), with :class:`~jinja2.StrictUndefined`
(an unknown variable is an error, never an empty string), HTML autoescaped in ``.html``
files, and a loader that only reads files inside the templates folder (no ``..``, no
symbolic link pointing out). Built-in fallbacks for ``_partials/base.html`` and
``_partials/brand.html`` serve projects that have none.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)
from jinja2.loaders import split_template_path
from markupsafe import Markup, escape

from omni_journey.render.defaults import BUILTIN_TEMPLATES
from omni_journey.render.locate import BUILTIN_PREFIX
from omni_journey.render.sandbox import BudgetedSandbox

__all__ = ["BuiltinLoader", "ConfinedLoader", "build_environment", "one_line", "paragraphs"]

_BLANK_LINE = re.compile(r"\n\s*\n")


class ConfinedLoader(FileSystemLoader):
    """Reads templates from one folder and refuses anything that resolves outside it."""

    def __init__(self, root: Path) -> None:
        super().__init__(os.fspath(root))
        self.root = root.resolve()

    def get_source(self, environment: Any, template: str) -> tuple[str, str, Callable[[], bool]]:
        pieces = split_template_path(template)  # refuses ".."
        resolved = self.root.joinpath(*pieces).resolve()
        if not resolved.is_relative_to(self.root):
            raise TemplateNotFound(template, f"{template!r} points outside the templates folder")
        return super().get_source(environment, template)


class BuiltinLoader(BaseLoader):
    """The built-in templates, named ``<built-in NAME>`` in tracebacks and diagnostics."""

    def __init__(self, templates: Mapping[str, str]) -> None:
        self.templates = templates

    def get_source(
        self, environment: Any, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        if template not in self.templates:
            raise TemplateNotFound(template)
        return self.templates[template], f"{BUILTIN_PREFIX}{template}>", lambda: True

    def list_templates(self) -> list[str]:
        return sorted(self.templates)


def paragraphs(text: object) -> Markup:
    """Plain text to HTML paragraphs: blank lines split paragraphs, newlines are ``<br>``.
    The text is escaped first, so customer data stays data."""
    blocks = [block.strip() for block in _BLANK_LINE.split(str(text)) if block.strip()]
    # every line escaped, then joined as plain strings: Markup's own join and format
    # would check each escaped piece again, at several times the cost
    html = "\n".join(
        "<p>" + "<br>\n".join([escape(line) for line in block.split("\n")]) + "</p>"
        for block in blocks
    )
    return Markup(html)  # noqa: S704 - built from escaped lines and fixed tags only


def one_line(text: object) -> str:
    """The text on one line: every run of spaces and line breaks becomes one space."""
    return " ".join(str(text).split())


def build_environment(templates_dir: Path) -> BudgetedSandbox:
    """The sandboxed environment for one templates folder.

    ``.html`` templates are autoescaped; ``.txt`` files and strings (the values in
    ``message.yaml``, ``push.yaml`` and ``whatsapp.yaml``) are not: they are text.
    """
    loaders: list[BaseLoader] = [ConfinedLoader(templates_dir), BuiltinLoader(BUILTIN_TEMPLATES)]
    environment = BudgetedSandbox(
        loader=ChoiceLoader(loaders),
        undefined=StrictUndefined,
        autoescape=select_autoescape(
            enabled_extensions=("html", "htm", "xml"), default_for_string=False, default=False
        ),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=True,
    )
    environment.filters["paragraphs"] = paragraphs
    environment.filters["one_line"] = one_line
    return environment
