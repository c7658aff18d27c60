"""The functions the rest of omni-journey calls: render, check, verify a link.

For many messages in a row (a dispatch batch), make one :class:`TemplateRenderer` and call its
``render`` method: it keeps what it has read and compiled.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from omni_journey.links import LinkClaims, LinkSigner, signing_keys
from omni_journey.render.checks import check_folder, check_partials, finish
from omni_journey.render.context import RenderContext
from omni_journey.render.options import RenderOptions
from omni_journey.render.rendered import RenderedMessage
from omni_journey.render.template_renderer import TemplateRenderer
from omni_journey.settings import Settings
from omni_journey.spec.diagnostics import Diagnostic

__all__ = ["check_message", "check_templates", "render_message", "verify_link"]

# Links in sample renders are signed with this when no settings are given: validation
# only needs their length, never their validity.
_VALIDATION_SECRET = "omni-journey-validate"  # noqa: S105 - not a secret


def render_message(
    templates_dir: Path,
    message_key: str,
    channel: str,
    context: RenderContext,
    *,
    settings: Settings,
    options: RenderOptions | None = None,
) -> RenderedMessage:
    """Render ``message_key`` on ``channel`` (email, sms, push, whatsapp) for one customer.

    Raises :class:`~omni_journey.render.RenderError` (a ``ValueError``) with a stable
    ``code`` and the file and line at fault.
    """
    renderer = TemplateRenderer.from_settings(templates_dir, settings, options)
    return renderer.render(message_key, channel, context)


def _renderer(
    templates_dir: Path,
    settings: Settings | None,
    options: RenderOptions | None,
    shown_dir: str | None,
) -> TemplateRenderer:
    if settings is not None:
        return TemplateRenderer.from_settings(templates_dir, settings, options, shown_dir)
    return TemplateRenderer(
        templates_dir, secret_key=_VALIDATION_SECRET, options=options, shown_dir=shown_dir
    )


def check_message(
    templates_dir: Path,
    message_key: str,
    *,
    settings: Settings | None = None,
    options: RenderOptions | None = None,
    shown_dir: str | None = None,
) -> list[Diagnostic]:
    """Every problem of one message, sorted: errors and warnings (see ``severity``).

    ``settings`` gives the limits (default: the built-in ones); ``shown_dir`` is how the
    templates folder prints in diagnostics (default: ``templates_dir`` as given).
    """
    renderer = _renderer(templates_dir, settings, options, shown_dir)
    return finish(check_folder(renderer, message_key))


def check_templates(
    templates_dir: Path,
    message_keys: Iterable[str] | None = None,
    *,
    settings: Settings | None = None,
    options: RenderOptions | None = None,
    shown_dir: str | None = None,
) -> list[Diagnostic]:
    """Every problem of the given messages (``None``: every message folder) and of
    ``_partials/``, sorted. ``settings`` and ``shown_dir`` as for :func:`check_message`.

    A key with no folder is skipped here: the journey that sends it reports
    ``unknown-message`` at its send step, which is the better place to point at.
    """
    renderer = _renderer(templates_dir, settings, options, shown_dir)
    keys = renderer.message_keys() if message_keys is None else sorted(set(message_keys))
    found = check_partials(renderer)
    for key in keys:
        if (renderer.templates_dir / key).is_dir():
            found += check_folder(renderer, key)
    return finish(found)


def verify_link(link: str, *, settings: Settings) -> LinkClaims:
    """The claims of a signed unsubscribe or click link, checked against
    ``OMNI_SECRET_KEY``. Raises :class:`~omni_journey.render.InvalidLinkError`."""
    return LinkSigner(signing_keys(settings), "http://verify.invalid").verify(link)
