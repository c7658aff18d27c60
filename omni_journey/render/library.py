"""The templates folder as a renderer reads it: message folders, shared content, YAML
variants and the sandboxed Jinja environment, each read, checked and compiled once.

Kept apart from rendering because ``validate`` (:mod:`omni_journey.render.checks`)
reads the same folders without rendering, and because a dispatch batch renders the
same few messages thousands of times: the cache is what makes that cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Template, nodes

from omni_journey.render.environment import build_environment
from omni_journey.render.errors import RenderError
from omni_journey.render.locate import Target, diagnose
from omni_journey.render.shapes import Field, content_problems
from omni_journey.render.shapes import variant_problems as shape_problems
from omni_journey.render.source import MESSAGE_KEY, Content, MessageFolder, load_content
from omni_journey.spec.diagnostics import Diagnostic, did_you_mean, quoted
from omni_journey.spec.loader import Document, load_yaml

__all__ = ["TemplateLibrary"]


def _is_plain_text(tree: nodes.Template) -> bool:
    """A template of text only: no expression, tag or variable, so no context."""
    return all(
        isinstance(node, (nodes.Output, nodes.TemplateData)) for node in tree.find_all(nodes.Node)
    )


class TemplateLibrary:
    """One templates folder, read lazily and cached: make one per batch or command."""

    def __init__(self, templates_dir: Path, *, shown_dir: str | None = None) -> None:
        self.templates_dir = Path(templates_dir)
        # how paths print in diagnostics (default: the templates folder as given)
        self.shown_dir = shown_dir or self.templates_dir.as_posix()
        self.environment = build_environment(self.templates_dir)
        self._strings: dict[str, Template] = {}
        self._constants: dict[str, str | None] = {}  # a string without Jinja: its output
        self._folders: dict[str, MessageFolder | None] = {}
        self._contents: dict[tuple[str, str | None], tuple[Content | None, list[Diagnostic]]] = {}
        self._variants: dict[tuple[str, str], tuple[Document | None, list[Diagnostic]]] = {}

    def diagnose(self, error: BaseException, target: Target) -> Diagnostic:
        return diagnose(error, target, self.templates_dir, self.shown_dir)

    def string_template(self, source: str) -> Template:
        """``source`` compiled once (shared content values, YAML variant values)."""
        template = self._strings.get(source)
        if template is None:
            template = self._strings[source] = self.environment.from_string(source)
        return template

    def render_string(self, source: str, variables: Mapping[str, Any]) -> str:
        """``source`` rendered with ``variables``. A value with no Jinja in it (most
        headlines, links, button texts) renders the same for everyone: rendered once."""
        template = self.string_template(source)
        if source not in self._constants:
            plain = _is_plain_text(self.environment.parse(source))
            self._constants[source] = template.render() if plain else None
        constant = self._constants[source]
        return constant if constant is not None else template.render(variables)

    def message_keys(self) -> list[str]:
        """Every message folder under the templates folder (``_partials`` is not one)."""
        if not self.templates_dir.is_dir():
            return []
        return sorted(
            path.name
            for path in self.templates_dir.iterdir()
            if path.is_dir() and MESSAGE_KEY.fullmatch(path.name)
        )

    def folder(self, key: str, channel: str = "*") -> MessageFolder:
        """The folder of message ``key``; :class:`RenderError` ``unknown-message`` if none."""
        if key not in self._folders:
            self._folders[key] = MessageFolder.open(self.templates_dir, key, self.shown_dir)
        folder = self._folders[key]
        if folder is None:
            close = did_you_mean(key, self.message_keys())
            raise RenderError(
                key,
                channel,
                Diagnostic(
                    path=f"{self.shown_dir}/{key}",
                    line=1,
                    col=1,
                    code="unknown-message",
                    message=f"there is no message {quoted(key)}: no folder "
                    f"{self.shown_dir}/{key}/ with a message.yaml",
                    hint=f'did you mean "{close}"?' if close else None,
                ),
            )
        return folder

    def content(
        self, folder: MessageFolder, locale: str | None
    ) -> tuple[Content | None, list[Diagnostic]]:
        """The shared content for ``locale`` and every problem with it."""
        cache_key = (folder.key, locale)
        if cache_key not in self._contents:
            content = load_content(folder, locale)
            if content is None:
                problem = Diagnostic(
                    path=folder.show("message.yaml"),
                    line=1,
                    col=1,
                    code="missing-content",
                    message=f"message {quoted(folder.key)} has no message.yaml",
                    expected="subject, headline and the rest of the shared content",
                    hint="create message.yaml in the message folder",
                )
                self._contents[cache_key] = (None, [problem])
            else:
                problems = [*content.diagnostics, *content_problems(content)]
                self._contents[cache_key] = (content, problems)
        return self._contents[cache_key]

    def variant(
        self, folder: MessageFolder, name: str, fields: Mapping[str, Field], what: str
    ) -> tuple[Document | None, list[Diagnostic]]:
        """A YAML variant (``push.yaml``, ``whatsapp.yaml``) and its problems."""
        cache_key = (folder.key, name)
        if cache_key not in self._variants:
            loaded = load_yaml(folder.directory / name, folder.show(name), noun=what)
            problems = list(loaded.diagnostics)
            if loaded.document is not None:
                problems += shape_problems(loaded.document, fields, what)
            self._variants[cache_key] = (loaded.document, problems)
        return self._variants[cache_key]
