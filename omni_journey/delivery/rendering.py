"""What delivery asks of a renderer, and what a renderer's exception means for the
message. Delivery does not import ``omni_journey.render``: production passes a function
that wraps ``omni_journey.render.TemplateRenderer``, tests pass plain functions."""

from __future__ import annotations

from typing import Protocol

from omni_journey.delivery.outbox import OutboxRow
from omni_journey.delivery.recipients import CustomerView
from omni_journey.errors import (
    DeliveryError,
    OmniJourneyError,
    PermanentDeliveryError,
    TransientDeliveryError,
)

__all__ = ["Renderer", "render_failure"]


class Renderer(Protocol):
    """Renders one outbox row for one customer: returns a RenderedMessage-like object
    (attributes or keys as :class:`~omni_journey.delivery.base.Content` reads them).

    It must bound its own time and memory: the dispatcher renders one row after the
    other, so a render that never returns holds up its whole batch (the production one
    renders under ``OMNI_RENDER_TIMEOUT_SECONDS`` / ``OMNI_RENDER_MAX_CHARS`` and raises
    ``render-timeout`` / ``render-too-large``). Raising never stops the run. An error
    that says it is permanent (a ``permanent`` attribute, or an omni-journey
    ``ValueError`` with a ``code``, as ``omni_journey.render.RenderError`` is) fails that
    message with its code; anything else fails it for this pass only (retried with
    backoff)."""

    def __call__(self, message: OutboxRow, customer: CustomerView) -> object: ...


def render_failure(error: BaseException) -> DeliveryError:
    """What a renderer's exception means for the message.

    A render error is recognised by what it says about itself. ``permanent = True``, or
    an omni-journey ``ValueError`` with a string ``code`` (``RenderError``: the template
    cannot render for this customer, and trying again renders the same) -> permanent,
    with that code. A :class:`DeliveryError` keeps its own kind. Anything else (a bug, a
    database hiccup while loading data) -> transient ``render_error``.
    """
    if isinstance(error, DeliveryError):
        return error
    code = getattr(error, "code", None)
    permanent = getattr(error, "permanent", None)
    if permanent is None:
        permanent = isinstance(error, OmniJourneyError) and isinstance(error, ValueError)
        permanent = permanent and isinstance(code, str) and bool(code)
    if permanent is True:
        code = code if isinstance(code, str) and code else "render_error"
        return PermanentDeliveryError("render", code, str(error)[:500])
    return TransientDeliveryError("render", "render_error", type(error).__name__)
