"""Render one message for one customer on one channel.

The shared content (``message.yaml`` and its locale files) is rendered first, each
value a template of its own; the channel variant then sees it as ``message``. A channel
without a variant file gets the built-in one, filled from the shared content, so every
message works on every channel. What comes out is checked (subject length, SMS parts,
push size, the email's text part) before anyone could send it. Each message renders
under its budget of time and size (``OMNI_RENDER_TIMEOUT_SECONDS``,
``OMNI_RENDER_MAX_CHARS``): past it, ``render-timeout`` or ``render-too-large``.

Called ``TemplateRenderer`` because delivery has its own ``Renderer``: the protocol of
whatever renders an outbox row (this class, wrapped, in production).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import css_inline
from pydantic import SecretStr

from omni_journey.links import LinkSigner, signing_keys
from omni_journey.render.context import RenderContext
from omni_journey.render.errors import RenderError
from omni_journey.render.job import RenderJob
from omni_journey.render.library import TemplateLibrary
from omni_journey.render.message_links import MessageLinks
from omni_journey.render.options import RenderOptions
from omni_journey.render.rendered import CHANNELS, RenderedMessage
from omni_journey.render.source import normalize_locale
from omni_journey.render.variants import (
    Variant,
    render_email,
    render_push,
    render_sms,
    render_whatsapp,
)
from omni_journey.settings import Settings
from omni_journey.spec.diagnostics import Diagnostic, one_of, quoted

__all__ = ["TemplateRenderer"]


class TemplateRenderer(TemplateLibrary):
    """Renders and checks the messages of one templates folder.

    It caches what it reads and compiles: make one per batch or command.
    """

    def __init__(
        self,
        templates_dir: Path,
        *,
        secret_key: SecretStr | str | Sequence[str],
        options: RenderOptions | None = None,
        shown_dir: str | None = None,
    ) -> None:
        super().__init__(templates_dir, shown_dir=shown_dir)
        self.options = options or RenderOptions()
        self.signer = LinkSigner(secret_key, self.options.link_base_url)
        self._inliner = css_inline.CSSInliner(load_remote_stylesheets=False, keep_at_rules=True)
        self._channels: dict[str, Callable[[RenderJob], Variant]] = {
            "email": lambda job: render_email(job, self._inliner, self.options),
            "sms": lambda job: render_sms(job, self.options),
            "push": lambda job: render_push(job, self.options),
            "whatsapp": render_whatsapp,
        }

    @classmethod
    def from_settings(
        cls,
        templates_dir: Path,
        settings: Settings,
        options: RenderOptions | None = None,
        shown_dir: str | None = None,
    ) -> TemplateRenderer:
        """A renderer signing links with ``OMNI_SECRET_KEY``, limits from ``settings``."""
        return cls(
            templates_dir,
            secret_key=signing_keys(settings),
            options=options or RenderOptions.from_settings(settings),
            shown_dir=shown_dir,
        )

    def render(self, message_key: str, channel: str, context: RenderContext) -> RenderedMessage:
        """Render ``message_key`` on ``channel`` for the customer in ``context``.

        Raises :class:`RenderError` with a stable code and the file and line at fault.
        """
        rendered, _ = self._run(message_key, channel, context, collect=False)
        assert rendered is not None  # without collecting, a problem raises
        return rendered

    def problems(
        self, message_key: str, channel: str, context: RenderContext
    ) -> tuple[RenderedMessage | None, list[Diagnostic]]:
        """Render as :meth:`render` does, but collect every problem instead of stopping
        at the first: a value of the shared content that fails is reported and used
        unrendered, so the variant is checked too. (What ``validate`` uses.)"""
        try:
            return self._run(message_key, channel, context, collect=True)
        except RenderError as error:
            return None, [error.diagnostic]

    def _run(
        self, message_key: str, channel: str, context: RenderContext, *, collect: bool
    ) -> tuple[RenderedMessage | None, list[Diagnostic]]:
        with self.options.budget.running():
            return self._budgeted(message_key, channel, context, collect=collect)

    def _budgeted(
        self, message_key: str, channel: str, context: RenderContext, *, collect: bool
    ) -> tuple[RenderedMessage | None, list[Diagnostic]]:
        if channel not in CHANNELS:
            raise RenderError(
                message_key,
                channel,
                Diagnostic(
                    path=f"{self.shown_dir}/{message_key}",
                    line=1,
                    col=1,
                    code="invalid-value",
                    message=f"there is no channel {quoted(channel)}",
                    expected=one_of(CHANNELS),
                ),
            )
        folder = self.folder(message_key, channel)
        locale = normalize_locale(context.locale)
        content, problems = self.content(folder, locale)
        errors = [p for p in problems if p.is_error]
        if content is None or errors:
            raise RenderError(message_key, channel, errors[0])
        links = MessageLinks(self.signer, context.customer_id, channel, message_key)
        variables: dict[str, Any] = {**context.variables(), "links": links}
        collected: list[Diagnostic] | None = [] if collect else None
        job = RenderJob(
            self, message_key, channel, folder, locale, content, variables, links, collected
        )
        variables["message"] = job.render_content(content.data)
        try:
            rendered, found = self._channels[channel](job)
        except RenderError as error:
            if collected is None:
                raise
            return None, [*collected, error.diagnostic]
        if collected is not None:
            return replace(rendered, warnings=tuple(found)), [*collected, *found]
        for problem in found:
            if problem.is_error:
                job.fail(problem)
        return replace(rendered, warnings=tuple(found)), found
