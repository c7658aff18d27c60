"""The plain-text part derived from HTML."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omni_journey.render import (
    RenderContext,
    RenderedEmail,
    RenderError,
    TemplateRenderer,
    customer_profile,
    html_text,
    sample_context,
    variants,
)
from omni_journey.render.context import SAMPLE_ATTRIBUTES, SAMPLE_EVENT
from omni_journey.render.html_text import (
    _read_plain_markup,
    _TextBuilder,
    html_text_by_html_parser,
    html_to_text,
)


def test_blocks_lists_and_links() -> None:
    html = """<html><head><title>T</title><style>p { color: red }</style></head><body>
    <h1>Hello &amp; welcome</h1>
    <p>Line one
       continues.<br>Second line</p>
    <ul><li>One</li> <li>Two</li></ul>
    <p><a href="https://x.example/a?b=1&amp;c=2">Shop now</a></p>
    </body></html>"""
    assert html_to_text(html) == (
        "Hello & welcome\n\nLine one continues.\nSecond line\n\n- One\n- Two\n\n"
        "Shop now <https://x.example/a?b=1&c=2>\n"
    )


def test_hidden_elements_head_and_scripts_are_left_out() -> None:
    html = (
        '<div style="display: none; max-height: 0">preheader <b>text</b></div>'
        "<script>alert(1)</script><p>Visible</p>"
    )
    assert html_to_text(html) == "Visible\n"


def test_image_links_use_the_alt_text_and_other_schemes_the_text() -> None:
    html = (
        '<p><a href="https://x.example"><img src="l.png" alt="Logo"></a> '
        '<a href="mailto:help@example.com">Write to us</a> '
        '<a href="https://y.example">https://y.example</a></p>'
    )
    assert html_to_text(html) == "Logo <https://x.example> Write to us https://y.example\n"


def test_table_cells_go_on_their_own_lines() -> None:
    html = "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>"
    assert html_to_text(html) == "a\nb\nc\n"


# --- the plain-markup reader says what HTMLParser says --------------------------------

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"
MESSAGES = sorted(p.name for p in TEMPLATES.iterdir() if p.is_dir() and not p.name.startswith("_"))


def _customers() -> list[RenderContext]:
    """Several customers: the sample ones, and some whose values HTML must escape."""
    odd = {"first_name": 'Zoë "Z" <b>&</b>', "tier": "gold", "points": 1200}
    contexts = [
        sample_context(),
        sample_context("de-AT"),
        sample_context(attributes=False, recommendations=False),
    ]
    for index, attributes in enumerate(({"first_name": "Ana"}, odd, {"first_name": "李"})):
        base = sample_context()
        contexts.append(
            RenderContext(
                customer=customer_profile(f"c-{index}", {**SAMPLE_ATTRIBUTES, **attributes}),
                event={**SAMPLE_EVENT, "product_name": f"Serum & Co <{index}>"},
                journey=base.journey,
                recommendations=base.recommendations,
            )
        )
    return contexts


def _rendered_text(renderer: TemplateRenderer, key: str, context: RenderContext) -> tuple[str, str]:
    """The email's text part, and the HTML it was read from (the variant as rendered,
    before CSS inlining), seen by wrapping the reader: the real one still runs."""
    read: list[str] = []
    reader = variants.html_to_text

    def watched(html: str) -> str:
        read.append(html)
        return reader(html)

    variants.html_to_text = watched
    try:
        email = renderer.render(key, "email", context)
    finally:
        variants.html_to_text = reader
    assert isinstance(email, RenderedEmail)
    [html] = read
    return email.text, html


@pytest.mark.parametrize("key", MESSAGES)
def test_the_text_part_of_every_shipped_email_is_what_html_parser_reads(key: str) -> None:
    renderer = TemplateRenderer(TEMPLATES, secret_key="test")
    compared = 0
    for context in _customers():
        try:
            text, html = _rendered_text(renderer, key, context)
        except RenderError:
            continue  # a message that needs event data this customer lacks
        assert text == html_text_by_html_parser(html)
        # ... and it was read without HTMLParser (the cheap way)
        assert _read_plain_markup(html, _TextBuilder()), key
        compared += 1
    assert compared >= 3


@pytest.mark.parametrize(
    "html",
    [
        "<p>a < b</p><p>c</p>",
        "<p>one</p><!-- a comment --><p>two</p>",
        "<!--[if mso]><table><tr><td><![endif]--><p>Outlook</p>",
        '<p title="a>b">x</p><a href=https://x.example/>y</a>',
        "<title>T <b>bold</b></title><p>body</p>",
        "<style>p { color: red }</style><style/><p>after</p>",
        "<P CLASS=x>Upper</P><BR/><a HREF='https://x.example?a=1&amp;b=2'>link</A>",
        "<pre>  keep\n   this  </pre><ul><li>x<li>y</ul>",
        "<div style='display:none'>hidden <span>deep</span></div>text &amp; more &copy",
        "<iframe><p>framed</p></iframe><noscript>ns</noscript>",
        "<p>unclosed <a href='https://x.example'>link",
        "<p>tail with an ampersand &amp",
        "</p>stray end<br>next",
    ],
)
def test_any_markup_reads_as_html_parser_reads_it(html: str) -> None:
    assert html_to_text(html) == html_text_by_html_parser(html)


# --- what the reader remembers ----------------------------------------------------------

_FRAGMENTS = st.sampled_from(
    [
        "<p>", "</p>", "<br>", "<div style='display:none'>", "</div>", "<pre>", "</pre>",
        '<a href="https://x.example/a?b=1&amp;c=2">', "<a href=mailto:x@example.com>", "</a>",
        '<img src="l.png" alt="Logo">', "<ul><li>", "</li></ul>", "<td>", "</td>", "<h1>",
        "</h1>", "<title>", "</title>", "<style>", "</style>", "<script>", "</script>",
        "<!DOCTYPE html>", "<!-- c -->", "<P CLASS=x>", "<br/>", "</ p>", "<", ">", "&amp;",
        "&copy", "text", "  spaced\n  out ", "Zoë", "\t", "\n\n",
    ]
)  # fmt: skip


def _read_afresh(html: str) -> str:
    """The plain reader with nothing remembered (HTMLParser when it is not plain)."""
    builder = _TextBuilder()
    if _read_plain_markup(html, builder):
        return builder.text()
    return html_text_by_html_parser(html)


@settings(max_examples=400, deadline=None)
@given(st.lists(_FRAGMENTS, max_size=40).map("".join))
def test_any_document_reads_the_same_remembered_or_not(html: str) -> None:
    expected = _read_afresh(html)
    assert html_to_text(html) == expected
    assert html_to_text(html) == expected  # every piece remembered now


def test_a_document_like_one_read_before_costs_only_its_new_pieces() -> None:
    renderer = TemplateRenderer(TEMPLATES, secret_key="test")
    contexts = _customers()
    html_text._MEMORY.forget()  # so that it does not forget between the two
    _rendered_text(renderer, "cart_reminder", contexts[3])
    remembered = len(html_text._MEMORY.effects)
    text, html = _rendered_text(renderer, "cart_reminder", contexts[5])
    assert text == html_text_by_html_parser(html)
    # the customer's name, product and signed links: a handful of pieces out of many
    assert len(html_text._MEMORY.effects) - remembered <= 12 < html.count("<") / 4


def test_forgetting_changes_nothing() -> None:
    renderer = TemplateRenderer(TEMPLATES, secret_key="test")
    for context in _customers():
        try:
            text, html = _rendered_text(renderer, "welcome", context)
        except RenderError:
            continue
        html_text._MEMORY.forget()
        assert html_to_text(html) == text
