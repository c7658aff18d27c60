"""Customer data that attacks every channel a message is rendered for.

One hostile value (markup, both quotes, an ampersand, Jinja syntax, CR/LF followed by a
header, control characters, a right-to-left override) as a customer's name, and a
``javascript:`` URL as their website, rendered by the real renderer for email (HTML and
text), SMS, push and WhatsApp, and the email built into MIME by the real builder the SES
and file providers share, then parsed back. Where escaping applies and where it must
not:

- email HTML: autoescaped in text and in attribute values (either quote), markup never
  live, a URL from data in ``href`` neutralised;
- email text, SMS, push, WhatsApp: the value as written, never an HTML entity;
- everywhere: Jinja syntax in data stays text (data is never a template);
- the subject: CR/LF become spaces, so no header can be injected; the MIME message has
  exactly the headers omni-journey set, one ``To``, no ``Bcc``;
- the push payload is JSON that gives the value back exactly;
- a WhatsApp template parameter with a line break is refused (WhatsApp would refuse
  it), the message fails with a reason instead of being sent broken.

(The sandbox itself: tests/unit/render/test_environment.py and test_budget.py.)
"""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from pydantic import SecretStr

from omni_journey.delivery.base import Content, OutgoingMessage
from omni_journey.delivery.mime import build_email
from omni_journey.render import (
    RenderContext,
    RenderedEmail,
    RenderedPush,
    RenderedSms,
    RenderedWhatsApp,
    RenderError,
    customer_profile,
    render_message,
)
from omni_journey.settings import Settings

NAME = (
    "Ann<script>alert('x')</script> \"q\" 'a' & <b>bold</b> {{ 7*7 }} {% if 1 %}"
    "\r\nBcc: victim@attacker.example\r\n\x07\x1b[31m\u202e end"
)
ONE_LINE = " ".join(NAME.replace("\r\n", "\n").split("\n"))  # what a one-line field shows
TEMPLATES = {
    "message.yaml": 'subject: "Hi {{ customer.first_name }}"\n'
    'headline: "Hello {{ customer.first_name }}"\n'
    'body: "Dear {{ customer.first_name }}"\n'
    'push_body: "{{ customer.first_name }} left something"\n',
    "email.html": "<html><body>\n"
    "<p title=\"{{ customer.first_name }}\" data-x='{{ customer.first_name }}'>"
    "{{ customer.first_name }}</p>\n"
    '<a href="{{ customer.website }}">site</a>\n'
    '<a href="{{ links.unsubscribe }}">unsubscribe</a>\n</body></html>\n',
    "email.txt": "Dear {{ customer.first_name }}\n",
    "sms.txt": "Hi {{ customer.first_name }}! {{ links.unsubscribe }}\n",
    "push.yaml": 'title: "{{ customer.first_name }}"\nbody: "{{ message.push_body }}"\n',
    "whatsapp.yaml": 'body: "Hi {{ customer.first_name }}"\n',
}


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project") / "templates"
    for message, extra in (("hostile", {}), ("hostile_template", {"whatsapp.yaml": (
        'body: "Hi"\ntemplate: {name: hi_v1, language: en, '
        'parameters: ["{{ customer.first_name }}"]}\n')})):  # fmt: skip
        (root / message).mkdir(parents=True)
        for name, content in {**TEMPLATES, **extra}.items():
            (root / message / name).write_text(content)
    return root


def _render(templates: Path, channel: str, message: str = "hostile") -> object:
    settings = Settings(
        secret_key=SecretStr("channel-test-secret-123"), project_dir=templates.parent,
        sms_max_segments=10,
    )  # fmt: skip
    context = RenderContext(
        customer_profile("c-1", {"first_name": NAME, "website": "javascript:alert(1)"},
                         locale="en", timezone="UTC")
    )  # fmt: skip
    return render_message(templates, message, channel, context, settings=settings)


def test_email_html_is_escaped_in_text_and_attributes(templates: Path) -> None:
    rendered = _render(templates, "email")
    assert isinstance(rendered, RenderedEmail)
    html = rendered.html
    assert "&lt;script&gt;alert(" in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "javascript:" not in html  # the href from data is neutralised
    assert "49" not in html and "{{ 7*7 }}" in html  # data is never a template
    # parsed as a browser would: no element and no attribute came from the data (no
    # attribute value was closed early by a quote), and the text reads as written
    tags: list[str] = []
    attributes: list[tuple[str, str, str | None]] = []
    texts: list[str] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            tags.append(tag)
            attributes.extend((tag, name, value) for name, value in attrs)

        def handle_data(self, data: str) -> None:
            texts.append(data)

    Collect(convert_charrefs=True).feed(html)
    assert "script" not in tags and "b" not in tags
    paragraph = {name: value for tag, name, value in attributes if tag == "p" and name != "style"}
    assert set(paragraph) == {"title", "data-x"}
    assert paragraph["title"] == paragraph["data-x"]
    assert paragraph["title"] is not None and paragraph["title"].startswith("Ann<script>")
    assert any(text.startswith("Ann<script>alert('x')</script> \"q\"") for text in texts)


def test_plain_channels_carry_the_value_as_written_never_entities(templates: Path) -> None:
    email_ = _render(templates, "email")
    sms = _render(templates, "sms")
    push = _render(templates, "push")
    whatsapp = _render(templates, "whatsapp")
    assert isinstance(email_, RenderedEmail) and isinstance(sms, RenderedSms)
    assert isinstance(push, RenderedPush) and isinstance(whatsapp, RenderedWhatsApp)
    written = NAME.replace("\r\n", "\n")
    for where, text in (("email text", email_.text), ("sms", sms.text),
                        ("push body", push.body), ("whatsapp", whatsapp.body)):  # fmt: skip
        assert "&lt;" not in text and "&amp;" not in text and "&#" not in text, where
        assert "{{ 7*7 }}" in text and "{% if 1 %}" in text, where
    assert written in sms.text
    assert written in whatsapp.body
    assert email_.text.startswith("Dear " + written)
    payload = json.loads(push.payload_bytes)
    assert payload["notification"]["body"] == push.body
    assert payload["notification"]["title"] == push.title == ONE_LINE  # a title is one line


def test_a_subject_with_cr_lf_injects_no_header(templates: Path) -> None:
    rendered = _render(templates, "email")
    assert isinstance(rendered, RenderedEmail)
    assert "\r" not in rendered.subject and "\n" not in rendered.subject
    message = OutgoingMessage(
        id=7, idempotency_key="k-7", channel="email", customer_id="c-1",
        to="ann@example.com", content=Content.of(rendered),
        at=datetime(2026, 5, 1, tzinfo=UTC), unsubscribe_url=rendered.unsubscribe_url,
    )  # fmt: skip
    raw = build_email(message, sender="Shop <no-reply@example.com>").as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert sorted(parsed.keys()) == sorted([
        "From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe",
        "List-Unsubscribe-Post", "X-Omni-Message", "MIME-Version", "Content-Type",
    ])  # fmt: skip
    assert parsed.get_all("To") == ["ann@example.com"] and parsed["Bcc"] is None
    assert str(parsed["Subject"]) == "Hi " + ONE_LINE
    headers = raw.split(b"\r\n\r\n", 1)[0]
    assert b"victim@attacker" not in headers  # only inside an encoded word, never raw
    assert all(byte >= 0x20 or byte in b"\r\n\t" for byte in headers)


def test_a_whatsapp_template_parameter_with_a_line_break_is_refused(templates: Path) -> None:
    with pytest.raises(RenderError) as refused:
        _render(templates, "whatsapp", "hostile_template")
    assert "line break" in str(refused.value)
    assert NAME not in str(refused.value) and "Ann<script>" not in str(refused.value)
