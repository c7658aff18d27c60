"""URLs from data in HTML attributes cannot run code; unquoted attribute values are
warned about by ``validate``, at file:line:column with a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from omni_journey.render import RenderContext, TemplateRenderer, check_message, customer_profile
from omni_journey.render.attributes import safe_url, unquoted_attributes
from tests.unit.render.conftest import CART, Write

LINKS = (
    '<a href="{{ customer.url }}">a</a>\n'
    "<img src='{{ customer.url }}'>\n"
    '<a href="{% if customer.url %}{{ customer.url }}{% endif %}">b</a>\n'
    '<a href="https://shop.example.com/p/{{ customer.url }}">c</a>\n'
    '<p title="{{ customer.url }}">d</p>\n'
)

UNSAFE = [
    "javascript:alert(3)",
    "JavaScript:alert(3)",
    " \tjava\nscript:alert(3)",
    "java&#115;cript:alert(3)",
    "data:text/html;base64,PHNjcmlwdD4=",
    "vbscript:msgbox(1)",
]
SAFE = [
    "https://shop.example.com/cart?a=1",
    "http://shop.example.com",
    "mailto:help@example.com",
    "tel:+4930123456",
    "/cart",
    "#top",
    "?q=serum",
    "cart/items",
]


@pytest.mark.parametrize("url", UNSAFE)
def test_unsafe_schemes_become_about_invalid(url: str) -> None:
    assert safe_url(url) == "about:invalid"


@pytest.mark.parametrize("url", SAFE)
def test_web_mail_phone_and_relative_urls_are_kept(url: str) -> None:
    assert safe_url(url) == url


def _render(write_templates: Write, url: str) -> str:
    root = write_templates({"m/message.yaml": CART, "m/email.html": LINKS})
    renderer = TemplateRenderer(root, secret_key="test-secret")
    context = RenderContext(customer_profile("c-1", {"url": url}), event={"name": "Serum"})
    return renderer.render("m", "email", context).html  # type: ignore[union-attr,no-any-return]


def test_a_javascript_url_from_customer_data_is_not_emitted(write_templates: Write) -> None:
    html = _render(write_templates, "javascript:alert(3)")
    assert 'href="about:invalid"' in html
    assert 'src="about:invalid"' in html
    assert html.count("about:invalid") == 3
    # where the template wrote the scheme, or outside a URL attribute, data stays data
    assert 'href="https://shop.example.com/p/javascript:alert(3)"' in html
    assert 'title="javascript:alert(3)"' in html


def test_a_web_url_from_customer_data_is_emitted_as_is(write_templates: Write) -> None:
    html = _render(write_templates, "https://shop.example.com/x?a=1&b=2")
    assert html.count('"https://shop.example.com/x?a=1&amp;b=2"') == 4  # 3 URLs and the title
    assert "about:invalid" not in html


def test_text_templates_are_not_rewritten(write_templates: Write) -> None:
    root = write_templates({"m/message.yaml": CART, "m/sms.txt": 'href="{{ customer.url }}"\n'})
    renderer = TemplateRenderer(root, secret_key="test-secret")
    context = RenderContext(customer_profile("c-1", {"url": "javascript:x"}), event={"name": "S"})
    assert renderer.render("m", "sms", context).text == 'href="javascript:x"'  # type: ignore[union-attr]


def test_unquoted_attributes_are_found_inside_tags_only() -> None:
    source = (
        "<p>Price={{ price }}</p>\n"
        '<p title={{ customer.city }} class="x">\n'
        '  <td width={% if wide %}100{% else %}50{% endif %} align="left">\n'
        '<a href="{{ url }}">ok</a>\n'
    )
    assert list(unquoted_attributes(source)) == [(2, 4, "title"), (3, 7, "width")]


def test_validate_warns_on_unquoted_attribute_values(write_templates: Write) -> None:
    root = write_templates(
        {
            "m/message.yaml": CART,
            "m/email.html": '<p>Hi</p>\n<p title={{ customer.first_name | default("x") }}>x</p>\n',
            "_partials/footer.html": "<a href={{ links.unsubscribe }}>stop</a>\n",
        }
    )
    found = [d for d in check_message(root, "m") if d.code == "unquoted-attribute"]
    assert [(Path(d.path).name, d.line, d.col, d.severity) for d in found] == [
        ("email.html", 2, 4, "warning")
    ]
    assert found[0].hint == 'quote it: title="{{ ... }}"'
    assert '"title" has no quotes' in found[0].message
    from omni_journey.render import check_templates

    everything = check_templates(root)
    assert ("footer.html", 1, 4) in {
        (Path(d.path).name, d.line, d.col) for d in everything if d.code == "unquoted-attribute"
    }
