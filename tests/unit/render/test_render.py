"""Rendering one message on each channel: content, escaping, locales, links, limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from omni_journey.render import (
    CHANNELS,
    LinkSigner,
    RenderContext,
    RenderedEmail,
    RenderedPush,
    RenderedSms,
    RenderedWhatsApp,
    RenderError,
    RenderOptions,
    SmsEncoding,
    TemplateRenderer,
    customer_profile,
    render_message,
    sample_context,
)
from omni_journey.settings import Settings
from tests.unit.render.conftest import CART, Write

SIGNER = LinkSigner("test-secret", "https://any.example")


def _context(**attributes: object) -> RenderContext:
    return RenderContext(
        customer=customer_profile("c-42", attributes, locale="en", timezone="Europe/Berlin"),
        event={"name": "Serum", "sku": "S-1"},
        journey={"key": "cart_abandonment", "step": "nudge"},
    )


def _email(renderer: TemplateRenderer, context: RenderContext, key: str = "cart") -> RenderedEmail:
    rendered = renderer.render(key, "email", context)
    assert isinstance(rendered, RenderedEmail)
    return rendered


def test_every_channel_renders_from_the_shared_content_alone(cart: TemplateRenderer) -> None:
    context = _context(first_name="Ana")
    email = _email(cart, context)
    assert email.subject == "Ana, your cart is waiting"
    assert email.preheader == "Still thinking it over?"
    assert "<h1" in email.html and "Serum is still in your cart</h1>" in email.html
    sms = cart.render("cart", "sms", context)
    assert isinstance(sms, RenderedSms)
    assert sms.text.startswith("Serum is still in your cart http://127.0.0.1:8765/l/c/")
    assert sms.text.endswith("\nReply STOP to opt out")
    push = cart.render("cart", "push", context)
    assert isinstance(push, RenderedPush)
    assert (push.title, push.body) == (
        "Serum is still in your cart",
        "Hi Ana, you left Serum in your cart.",
    )
    whatsapp = cart.render("cart", "whatsapp", context)
    assert isinstance(whatsapp, RenderedWhatsApp)
    assert whatsapp.body.startswith("*Serum is still in your cart*\n\nHi Ana,")
    assert whatsapp.template is None


def test_customer_data_is_escaped_in_html_only(cart: TemplateRenderer) -> None:
    context = _context(first_name="<script>alert(1)</script>")
    email = _email(cart, context)
    assert "<script>" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email.html
    assert email.subject == "<script>alert(1)</script>, your cart is waiting"
    assert "Hi <script>alert(1)</script>," in email.text  # plain text stays text
    push = cart.render("cart", "push", context)
    assert isinstance(push, RenderedPush)
    assert json.loads(push.payload_bytes)["notification"]["body"].startswith("Hi <script>")


def test_css_is_inlined_and_remote_stylesheets_are_not_fetched(write_templates: Write) -> None:
    root = write_templates(
        {
            "m/message.yaml": "subject: s\nheadline: h\n",
            "m/email.html": (
                '<html><head><link rel="stylesheet" href="https://cdn.invalid/x.css">'
                "<style>p.note { color: #123456 } @media (max-width: 600px) { p { color: red } }"
                '</style></head><body><p class="note">Hi</p></body></html>'
            ),
        }
    )
    email = _email(TemplateRenderer(root, secret_key="k"), _context(), "m")
    assert '<p class="note" style="color: #123456;">Hi</p>' in email.html
    assert "p.note" not in email.html  # the rule moved into the element
    assert "@media (max-width: 600px)" in email.html  # media queries stay in the head
    assert "cdn.invalid" not in email.html


def test_the_text_part_is_derived_from_the_html(cart: TemplateRenderer) -> None:
    email = _email(cart, _context(first_name="Ana"))
    assert "Serum is still in your cart\n\nHi Ana,\n\nyou left Serum in your cart." in email.text
    assert "Back to my cart <https://any.example" not in email.text  # links are tracked
    click, unsubscribe = (
        line.split("<")[1].rstrip(">") for line in email.text.splitlines() if "<http" in line
    )
    assert SIGNER.verify(click).url == "https://shop.example.com/cart"
    assert SIGNER.verify(unsubscribe).kind == "unsubscribe"
    assert "Still thinking" not in email.text  # the hidden preheader is not text


def test_email_txt_replaces_the_derived_text(write_templates: Write) -> None:
    root = write_templates(
        {"cart/message.yaml": CART, "cart/email.txt": "{{ message.headline }}\n\n\n\nBye   \n"}
    )
    email = _email(TemplateRenderer(root, secret_key="k"), _context())
    assert email.text == "Serum is still in your cart\n\nBye"


def test_unsubscribe_link_is_signed_for_customer_channel_and_message(
    cart: TemplateRenderer,
) -> None:
    email = _email(cart, _context())
    claims = SIGNER.verify(email.unsubscribe_url)
    assert (claims.kind, claims.customer_id, claims.channel, claims.message) == (
        "unsubscribe",
        "c-42",
        "email",
        "cart",
    )
    assert email.unsubscribe_url in email.html
    sms = cart.render("cart", "sms", _context())
    assert isinstance(sms, RenderedSms)
    link = next(word for word in sms.text.split() if word.startswith("http"))
    assert SIGNER.verify(link).channel == "sms"


def test_an_unknown_variable_is_an_error_with_its_line(write_templates: Write) -> None:
    root = write_templates(
        {
            "m/message.yaml": "subject: s\nheadline: h\n",
            "m/sms.txt": "Hi\n{{ customer.nickname }}\n",
        }
    )
    with pytest.raises(RenderError) as caught:
        TemplateRenderer(root, secret_key="k").render("m", "sms", _context())
    error = caught.value
    assert isinstance(error, ValueError)
    assert (error.code, error.channel, error.message_key) == ("undefined-variable", "sms", "m")
    assert error.diagnostic.path.endswith("templates/m/sms.txt")
    assert error.diagnostic.line == 2
    assert "nickname" in error.reason


def test_a_missing_attribute_in_the_shared_content_points_at_the_yaml(
    write_templates: Write,
) -> None:
    root = write_templates(
        {
            "m/message.yaml": (
                "subject: s\nheadline: h\nbody: |\n  Hello\n  {{ customer.first_name }}\n"
            )
        }
    )
    with pytest.raises(RenderError) as caught:
        TemplateRenderer(root, secret_key="k").render("m", "email", _context())
    assert caught.value.code == "undefined-variable"
    assert caught.value.diagnostic.path.endswith("templates/m/message.yaml")
    assert caught.value.diagnostic.line == 5  # the line inside the block scalar


def test_the_sandbox_stops_a_hostile_template(write_templates: Write) -> None:
    root = write_templates(
        {
            "m/message.yaml": "subject: s\nheadline: h\n",
            "m/email.html": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        }
    )
    with pytest.raises(RenderError) as caught:
        TemplateRenderer(root, secret_key="k").render("m", "email", _context())
    assert caught.value.code == "unsafe-template"
    assert caught.value.diagnostic.line == 1


def test_the_customer_profile_hides_tokens_and_secrets() -> None:
    profile = customer_profile(
        "c-1",
        {"first_name": "Ana", "push_token": "t", "apiKey": "k", "password": "p", "id": "x"},
        locale="de",
        timezone="Europe/Berlin",
    )
    assert profile == {
        "first_name": "Ana",
        "id": "c-1",
        "locale": "de",
        "timezone": "Europe/Berlin",
    }


@pytest.mark.parametrize(
    ("locale", "subject", "cta", "used"),
    [
        ("de-AT", "Servus, dein Warenkorb wartet", "Zum Warenkorb", "de-AT"),
        ("de_at", "Servus, dein Warenkorb wartet", "Zum Warenkorb", "de-AT"),
        ("de-CH", "Hallo, dein Warenkorb wartet", "Zum Warenkorb", "de"),
        ("de", "Hallo, dein Warenkorb wartet", "Zum Warenkorb", "de"),
        ("fr-FR", "Hi, your cart is waiting", "Back to my cart", None),
        (None, "Hi, your cart is waiting", "Back to my cart", None),
    ],
)
def test_locale_falls_back_to_the_language_then_the_default(
    write_templates: Write, locale: str | None, subject: str, cta: str, used: str | None
) -> None:
    root = write_templates(
        {
            "cart/message.yaml": CART,
            "cart/message.de.yaml": (
                "subject: \"{{ customer.first_name | default('Hallo') }}, dein Warenkorb wartet\"\n"
                "cta: {text: Zum Warenkorb}\n"
            ),
            "cart/message.de-AT.yaml": (
                "subject: \"{{ customer.first_name | default('Servus') }}, "
                'dein Warenkorb wartet"\n'
            ),
        }
    )
    context = _context().with_locale(locale)
    email = _email(TemplateRenderer(root, secret_key="test-secret"), context)
    assert email.subject == subject
    assert email.locale == used
    assert f">{cta}</a>" in email.html
    # the German files only change some keys: the rest comes from message.yaml
    assert "Still thinking it over?" in email.html
    assert SIGNER.verify(email.html.split('href="')[1].split('"')[0]).url == (
        "https://shop.example.com/cart"
    )


def test_locale_variant_files_win_over_the_default_variant(write_templates: Write) -> None:
    root = write_templates(
        {
            "cart/message.yaml": CART,
            "cart/sms.txt": "english",
            "cart/sms.de.txt": "deutsch",
            "cart/whatsapp.de.yaml": "body: hallo\ntemplate:\n  name: cart_v1\n",
        }
    )
    renderer = TemplateRenderer(root, secret_key="k")
    assert renderer.render("cart", "sms", _context().with_locale("de-DE")).text == "deutsch"  # type: ignore[union-attr]
    assert renderer.render("cart", "sms", _context().with_locale("en")).text == "english"  # type: ignore[union-attr]
    whatsapp = renderer.render("cart", "whatsapp", _context().with_locale("de-DE"))
    assert isinstance(whatsapp, RenderedWhatsApp)
    assert (whatsapp.body, whatsapp.template, whatsapp.language) == ("hallo", "cart_v1", "de")


def test_whatsapp_template_and_parameters(write_templates: Write) -> None:
    root = write_templates(
        {
            "cart/message.yaml": CART,
            "cart/whatsapp.yaml": (
                "template:\n  name: cart_reminder_v1\n  language: en_US\n  parameters:\n"
                "    - \"{{ customer.first_name | default('there') }}\"\n"
                '    - "{{ links.click(message.cta.url) }}"\n'
            ),
        }
    )
    whatsapp = TemplateRenderer(root, secret_key="test-secret").render(
        "cart", "whatsapp", _context()
    )
    assert isinstance(whatsapp, RenderedWhatsApp)
    assert (whatsapp.template, whatsapp.language, whatsapp.params[0]) == (
        "cart_reminder_v1",
        "en_US",
        "there",
    )
    assert SIGNER.verify(whatsapp.params[1]).channel == "whatsapp"
    assert whatsapp.body.startswith("*Serum is still in your cart*")  # free text: built in


def test_push_yaml_and_its_fcm_payload(write_templates: Write) -> None:
    root = write_templates(
        {
            "cart/message.yaml": CART,
            "cart/push.yaml": (
                'title: "{{ message.headline }}"\nbody: "Only {{ event.sku }}"\n'
                'image: "https://img.example/{{ event.sku }}.jpg"\n'
                'deep_link: "exampleshop://cart"\ndata:\n  sku: "{{ event.sku }}"\n  count: 3\n'
            ),
        }
    )
    push = TemplateRenderer(root, secret_key="k").render("cart", "push", _context())
    assert isinstance(push, RenderedPush)
    assert json.loads(push.payload_bytes) == {
        "notification": {
            "title": "Serum is still in your cart",
            "body": "Only S-1",
            "image": "https://img.example/S-1.jpg",
        },
        "data": {
            "message": "cart",
            "journey": "cart_abandonment",
            "step": "nudge",
            "deep_link": "exampleshop://cart",
            "sku": "S-1",
            "count": "3",
        },
    }
    assert push.size == len(push.payload_bytes)


def test_a_push_over_4096_bytes_is_refused(write_templates: Write) -> None:
    # "é" is two bytes in UTF-8: FCM counts bytes, not characters
    root = write_templates(
        {
            "m/message.yaml": "subject: s\nheadline: h\n",
            "m/push.yaml": "title: t\nbody: '{{ event.text }}'\n",
        }
    )
    renderer = TemplateRenderer(root, secret_key="k")
    customer = _context().customer

    def push_with(chars: int) -> RenderContext:
        return RenderContext(customer, {"text": "é" * chars})

    empty = renderer.render("m", "push", push_with(0))
    assert isinstance(empty, RenderedPush)
    overhead = empty.size
    fits = (4096 - overhead) // 2
    rendered = renderer.render("m", "push", push_with(fits))
    assert isinstance(rendered, RenderedPush) and rendered.size <= 4096
    with pytest.raises(RenderError) as caught:
        renderer.render("m", "push", push_with(fits + 1))
    assert caught.value.code == "push-too-large"
    assert "4096" in caught.value.reason


def test_an_sms_over_the_segment_limit_is_refused(write_templates: Write) -> None:
    root = write_templates(
        {"m/message.yaml": "subject: s\nheadline: h\n", "m/sms.txt": "{{ event.text }}"}
    )
    base = _context()

    def sms(text: str, limit: int = 3) -> RenderedSms:
        renderer = TemplateRenderer(
            root, secret_key="k", options=RenderOptions(sms_max_segments=limit)
        )
        rendered = renderer.render("m", "sms", RenderContext(base.customer, {"text": text}))
        assert isinstance(rendered, RenderedSms)
        return rendered

    assert sms("a" * 459).segments == 3
    with pytest.raises(RenderError) as caught:
        sms("a" * 460)
    assert caught.value.code == "sms-too-many-segments"
    assert sms("a" * 460, limit=4).segments == 4
    unicode = sms("ça" * 30)
    assert (unicode.encoding, unicode.segments, unicode.units) == (SmsEncoding.UCS2, 1, 60)


def test_a_long_subject_is_a_warning_not_an_error(write_templates: Write) -> None:
    root = write_templates({"m/message.yaml": f"subject: {'x' * 79}\nheadline: h\n"})
    email = _email(TemplateRenderer(root, secret_key="k"), _context(), "m")
    assert [w.code for w in email.warnings] == ["subject-too-long"]
    assert email.warnings[0].severity == "warning"
    relaxed = TemplateRenderer(root, secret_key="k", options=RenderOptions(subject_max_chars=100))
    assert _email(relaxed, _context(), "m").warnings == ()


def test_an_email_without_any_text_is_refused(write_templates: Write) -> None:
    root = write_templates(
        {"m/message.yaml": "subject: s\nheadline: h\n", "m/email.html": '<img src="x.png">'}
    )
    with pytest.raises(RenderError) as caught:
        TemplateRenderer(root, secret_key="k").render("m", "email", _context())
    assert caught.value.code == "email-no-text"


def test_unknown_message_and_channel(cart: TemplateRenderer) -> None:
    with pytest.raises(RenderError) as caught:
        cart.render("crat", "email", _context())
    assert caught.value.code == "unknown-message"
    assert caught.value.diagnostic.hint == 'did you mean "cart"?'
    with pytest.raises(RenderError) as caught:
        cart.render("cart", "fax", _context())
    assert caught.value.code == "invalid-value"


def test_a_folder_without_message_yaml(write_templates: Write) -> None:
    root = write_templates({"m/sms.txt": "hi"})
    with pytest.raises(RenderError) as caught:
        TemplateRenderer(root, secret_key="k").render("m", "sms", _context())
    assert caught.value.code == "missing-content"


def test_render_message_signs_with_the_settings_secret(write_templates: Write) -> None:
    root = write_templates({"cart/message.yaml": CART})
    settings = Settings(secret_key=SecretStr("from-settings-0123456789"))
    for channel in CHANNELS:
        rendered = render_message(root, "cart", channel, sample_context(), settings=settings)
        assert rendered.channel == channel
    email = render_message(root, "cart", "email", sample_context(), settings=settings)
    assert isinstance(email, RenderedEmail)
    LinkSigner("from-settings-0123456789", "https://x.example").verify(email.unsubscribe_url)


def test_the_link_base_url_is_configurable(cart: TemplateRenderer, write_templates: Write) -> None:
    renderer = TemplateRenderer(
        Path(cart.templates_dir),
        secret_key="k",
        options=RenderOptions(link_base_url="https://go.shop.example"),
    )
    email = _email(renderer, _context())
    assert email.unsubscribe_url.startswith("https://go.shop.example/u/")
    with pytest.raises(ValueError, match="http"):
        RenderOptions(link_base_url="ftp://x")
