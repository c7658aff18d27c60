"""Rendering messages: one message, written once, on every channel.

Marketer templates run in a sandboxed Jinja environment (this package is the only place
that builds one), HTML is autoescaped, unknown variables are errors. See
``docs/templates.md`` for the folder layout and what templates can use.
"""

from __future__ import annotations

from omni_journey.links import InvalidLinkError, LinkClaims, LinkSigner
from omni_journey.render.api import (
    check_message,
    check_templates,
    render_message,
    verify_link,
)
from omni_journey.render.context import RenderContext, customer_profile, sample_context
from omni_journey.render.errors import TEMPLATE_CODES, RenderError
from omni_journey.render.options import RenderOptions
from omni_journey.render.rendered import (
    CHANNELS,
    RenderedEmail,
    RenderedMessage,
    RenderedPush,
    RenderedSms,
    RenderedWhatsApp,
)
from omni_journey.render.sms import SmsEncoding, SmsInfo, measure_sms, split_sms
from omni_journey.render.template_renderer import TemplateRenderer

__all__ = [
    "CHANNELS",
    "TEMPLATE_CODES",
    "InvalidLinkError",
    "LinkClaims",
    "LinkSigner",
    "RenderContext",
    "RenderError",
    "RenderOptions",
    "RenderedEmail",
    "RenderedMessage",
    "RenderedPush",
    "RenderedSms",
    "RenderedWhatsApp",
    "SmsEncoding",
    "SmsInfo",
    "TemplateRenderer",
    "check_message",
    "check_templates",
    "customer_profile",
    "measure_sms",
    "render_message",
    "sample_context",
    "split_sms",
    "verify_link",
]
