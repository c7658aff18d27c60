"""One render in progress: which message, channel and locale, with which variables, and
the three ways a render turns template text into output (a shared-content value, a
string of a YAML variant, a variant file), each failing with the file and line at fault.

A job is what the channel variants (:mod:`omni_journey.render.variants`) work on, so
they need nothing of the renderer but the job and its library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from omni_journey.render.assess import Where
from omni_journey.render.errors import RenderError
from omni_journey.render.library import TemplateLibrary
from omni_journey.render.locate import Target, file_document
from omni_journey.render.message_links import MessageLinks
from omni_journey.render.source import Content, MessageFolder
from omni_journey.spec.diagnostics import Diagnostic
from omni_journey.spec.naming import YamlPath

__all__ = ["RenderJob"]


@dataclass
class RenderJob:
    """One render: which message, channel and locale, with what."""

    library: TemplateLibrary
    key: str
    channel: str
    folder: MessageFolder
    locale: str | None
    content: Content
    variables: dict[str, Any]
    links: MessageLinks
    # validate's mode: content problems are collected here (and the raw value kept) so
    # the channel variant is still checked; ``None`` stops at the first problem.
    collected: list[Diagnostic] | None = None

    def fail(self, diagnostic: Diagnostic) -> NoReturn:
        raise RenderError(self.key, self.channel, diagnostic)

    def render_content(self, value: Any, path: YamlPath = ()) -> Any:
        """The shared content with every string rendered (``message`` in variants)."""
        if isinstance(value, str):
            target = Target(self.content.origin(path), yaml_path=path)
            if self.collected is None:
                return self.render_string(value, target)
            try:
                return self.render_string(value, target)
            except RenderError as error:
                self.collected.append(error.diagnostic)
                return value
        if isinstance(value, Mapping):
            return {k: self.render_content(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render_content(v, (*path, i)) for i, v in enumerate(value)]
        return value

    def render_string(self, source: str, target: Target) -> str:
        try:
            return self.library.render_string(source, self.variables)
        except Exception as error:
            self.fail(self.library.diagnose(error, target))

    def render_file(self, name: str | None, default: str, label: str) -> str:
        """The variant file ``name`` of the message, or the built-in ``default``."""
        template_name = default if name is None else f"{self.key}/{name}"
        try:
            return self.library.environment.get_template(template_name).render(self.variables)
        except Exception as error:
            # the file is read for its lines only when there is a problem to show
            if name is None:
                target = Target(self.content.default, label=label)
            else:
                target = Target(file_document(self.folder.directory / name, self.folder.show(name)))
            self.fail(self.library.diagnose(error, target))

    def where(self, name: str | None, fallback: YamlPath) -> Where:
        """Where problems with a variant's output point: its file, or the shared content."""
        if name is None:
            return self.content.origin(fallback), fallback
        return file_document(self.folder.directory / name, self.folder.show(name)), ()
