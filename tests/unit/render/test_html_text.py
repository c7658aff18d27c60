"""The plain-text part derived from HTML."""

from __future__ import annotations

from omni_journey.render.html_text import html_to_text


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
