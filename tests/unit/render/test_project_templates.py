"""The messages shipped in templates/: every one renders on all four channels, and the
journeys' messages all have their variants written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from omni_journey.render import (
    CHANNELS,
    RenderedEmail,
    RenderedPush,
    RenderedSms,
    TemplateRenderer,
    check_templates,
    sample_context,
)
from omni_journey.render.source import MessageFolder

ROOT = Path(__file__).resolve().parents[3]
TEMPLATES = ROOT / "templates"
MESSAGES = sorted(p.name for p in TEMPLATES.iterdir() if p.is_dir() and not p.name.startswith("_"))
RENDERER = TemplateRenderer(TEMPLATES, secret_key="test")


def test_there_are_messages_and_the_journeys_use_only_them() -> None:
    assert len(MESSAGES) >= 10
    used = {
        match
        for journey in (ROOT / "journeys").glob("*.yaml")
        for match in re.findall(r"^\s*message:\s*(\w+)", journey.read_text(), re.MULTILINE)
    }
    assert used and used <= set(MESSAGES)


@pytest.mark.parametrize("key", MESSAGES)
@pytest.mark.parametrize("channel", CHANNELS)
def test_every_message_renders_on_every_channel(key: str, channel: str) -> None:
    for context in (sample_context(), sample_context(attributes=False, recommendations=False)):
        rendered = RENDERER.render(key, channel, context)
        assert rendered.channel == channel
        if isinstance(rendered, RenderedEmail):
            assert rendered.subject and rendered.text.strip()
            assert rendered.unsubscribe_url in rendered.html
        elif isinstance(rendered, RenderedSms):
            assert 1 <= rendered.segments <= 3
            assert "STOP" in rendered.text
        elif isinstance(rendered, RenderedPush):
            assert rendered.title and rendered.size <= 4096


@pytest.mark.parametrize("key", MESSAGES)
def test_every_message_has_all_its_variants_written(key: str) -> None:
    folder = MessageFolder.open(TEMPLATES, key, "templates")
    assert folder is not None
    for variant in ("email", "sms", "push", "whatsapp"):
        assert folder.find(variant, None), f"{key} has no {variant} variant"
    whatsapp = RENDERER.render(key, "whatsapp", sample_context())
    assert getattr(whatsapp, "template", None), f"{key} has no approved WhatsApp template"


def test_the_shipped_templates_have_no_errors() -> None:
    found = check_templates(TEMPLATES, shown_dir="templates")
    assert [d.format() for d in found if d.is_error] == []


def test_welcome_speaks_german_on_every_channel() -> None:
    context = sample_context("de-AT")
    email = RENDERER.render("welcome", "email", context)
    assert isinstance(email, RenderedEmail)
    assert (email.locale, email.subject) == ("de", "Willkommen, Ana!")
    assert "Abmelden" in email.html and "Unsubscribe" not in email.html
    push = RENDERER.render("welcome", "push", context)
    assert isinstance(push, RenderedPush)
    assert push.title == "Willkommen im Shop"
    whatsapp = RENDERER.render("welcome", "whatsapp", context)
    assert getattr(whatsapp, "language", None) == "de"
