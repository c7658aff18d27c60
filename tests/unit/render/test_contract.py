"""The render package's contract: its public names, and docs that cover every code."""

from __future__ import annotations

from pathlib import Path

import omni_journey.render as render
from omni_journey.render import TEMPLATE_CODES
from omni_journey.spec.diagnostics import CODES

DOCS = Path(__file__).resolve().parents[3] / "docs" / "templates.md"


def test_the_public_surface_is_pinned() -> None:
    assert sorted(render.__all__) == [
        "CHANNELS",
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
        "TEMPLATE_CODES",
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
    for name in render.__all__:
        assert getattr(render, name) is not None


def test_template_codes_are_new_and_documented() -> None:
    assert not set(TEMPLATE_CODES) & set(CODES)
    docs = DOCS.read_text()
    assert [code for code in TEMPLATE_CODES if f"`{code}`" not in docs] == []


def test_render_error_is_a_value_error_of_ours() -> None:
    from omni_journey.errors import OmniJourneyError

    assert issubclass(render.RenderError, OmniJourneyError)
    assert issubclass(render.RenderError, ValueError)
    assert issubclass(render.InvalidLinkError, ValueError)
