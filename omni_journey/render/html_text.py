"""The plain-text part of an email, derived from its HTML when there is no ``email.txt``.

Paragraphs and headings become blocks, list items ``- item``, links ``text <url>``;
the head, styles, scripts and hidden elements (the preheader) are left out.

Why two readers: the HTML differs for every customer (names, signed links), so no cache
of whole documents ever hits, and the standard library's ``HTMLParser`` cost about a
third of rendering an email. Email HTML written from our templates is plain markup, so
:func:`html_to_text` reads it with one regular expression per tag, parsing each distinct
tag once (most tags repeat from message to message). Anything outside that plain subset
(comments, ``<`` in text or attribute values, raw-text elements holding markup) goes to
``HTMLParser`` instead. Both drive the same :class:`_TextBuilder`, and the subset is
chosen so that ``HTMLParser`` would report exactly the same tags and text for it: the
text part is the same whichever reader ran (tests compare them on the shipped templates).
"""

from __future__ import annotations

import re
from functools import lru_cache
from html import unescape
from html.parser import HTMLParser

__all__ = ["html_to_text"]

_SKIP = frozenset({"head", "title", "style", "script", "template"})
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
_PARAGRAPH = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "blockquote", "pre"}
)
_LINE = frozenset({"div", "tr", "li", "section", "header", "footer", "td", "th", "center"})
_HIDDEN = re.compile(r"display\s*:\s*none|mso-hide\s*:\s*all", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")

Attributes = list[tuple[str, str | None]]


class _TextBuilder(HTMLParser):
    """Collects the text; its ``handle_*`` methods are called by ``HTMLParser.feed`` or
    by :func:`_read_plain_markup`, which report the same tags and text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._open: list[tuple[str, bool]] = []  # (tag, hides its content)
        self._hiding = 0  # entries of _open that hide their content
        self._in_pre = 0  # entries of _open that are <pre>
        self._href: str | None = None
        self._link_text: list[str] = []
        self._link_alt: str = ""
        self._pending = 0  # line breaks owed before the next text

    @property
    def _hidden(self) -> bool:
        return self._hiding > 0

    def handle_starttag(self, tag: str, attrs: Attributes) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag not in _VOID:
            hides = tag in _SKIP or bool(_HIDDEN.search(attributes.get("style", "")))
            self._open.append((tag, hides))
            self._hiding += hides
            self._in_pre += tag == "pre"
        if self._hidden:
            return
        if tag == "br":
            self._write("\n")
        elif tag in _PARAGRAPH or tag == "hr":
            self._break(2)
        elif tag in _LINE:
            self._break(1)
        if tag == "li":
            self._emit("- ")
        elif tag == "a":
            self._href = attributes.get("href", "").strip()
            self._link_text, self._link_alt = [], ""
        elif tag == "img" and self._href is not None:
            self._link_alt = self._link_alt or attributes.get("alt", "").strip()

    def handle_endtag(self, tag: str) -> None:
        hidden_before = self._hidden
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index][0] == tag:
                closed = self._open[index:]
                del self._open[index:]
                self._hiding -= sum(hides for _, hides in closed)
                self._in_pre -= sum(name == "pre" for name, _ in closed)
                break
        if hidden_before:
            return
        if tag == "a" and self._href is not None:
            self._close_link()
        elif tag in _PARAGRAPH:
            self._break(2)
        elif tag in _LINE:
            self._break(1)

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        if not self._in_pre:
            data = _WHITESPACE.sub(" ", data)
        self._emit(data)

    def _break(self, lines: int) -> None:
        self._pending = max(self._pending, lines)

    def _emit(self, text: str) -> None:
        if self._href is not None:
            self._link_text.append(text)
        elif text.strip() or not self._pending:
            self._write(text)

    def _write(self, text: str) -> None:
        if self._pending and self.out:
            self.out.append("\n" * self._pending)
        self._pending = 0
        self.out.append(text)

    def _close_link(self) -> None:
        href, self._href = self._href or "", None
        text = _SPACES.sub(" ", "".join(self._link_text)).strip() or self._link_alt
        if not href.startswith(("http://", "https://")) or href == text:
            self._write(text or href)
        elif text:
            self._write(f"{text} <{href}>")
        else:
            self._write(href)

    def text(self) -> str:
        if self._href is not None:
            self._close_link()
        lines = [_SPACES.sub(" ", line).strip() for line in "".join(self.out).split("\n")]
        return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip() + "\n"


# --- the plain-markup reader ------------------------------------------------------------
#
# A tag it reads is one HTMLParser reads the same way: a start tag is a name of letters
# and digits, then attributes each after whitespace, valued with "...", '...' (neither
# holding < or >) or a bare word followed by whitespace or >; an end tag is </name>;
# <!DOCTYPE ...> is skipped. Any other "<" makes it hand the document to HTMLParser.

_VALUE = r"""(?:"[^"<>]*"|'[^'<>]*'|[^\s"'=<>`/]+(?=[\s>]))"""
_ATTRIBUTE = rf"""\s+([^\s"'<>/=]+)(?:\s*=\s*({_VALUE}))?"""
_MARKUP = re.compile(
    r"<(?:/(?P<end>[a-zA-Z][a-zA-Z0-9]*)\s*"
    rf"|(?P<start>[a-zA-Z][a-zA-Z0-9]*)(?P<attrs>(?:{_ATTRIBUTE})*)\s*(?P<closed>/)?"
    r"|!(?i:doctype)(?:\s[^<>]*)?)>"
)
_ONE_ATTRIBUTE = re.compile(_ATTRIBUTE)
# HTMLParser reads the content of these as raw text: only read here without markup in it.
_RAW_TEXT = frozenset({"script", "style"})
_ESCAPABLE_RAW_TEXT = frozenset({"title", "textarea"})
# Elements whose content parsers of different Python versions read differently.
_HANDED_OVER = frozenset({"xmp", "iframe", "noembed", "noframes", "noscript", "plaintext"})


@lru_cache(maxsize=4096)
def _attributes(text: str) -> tuple[tuple[str, str | None], ...]:
    """The attributes of one start tag as HTMLParser reports them (names lower-cased,
    quotes off, character references resolved), parsed once per distinct tag."""
    found: list[tuple[str, str | None]] = []
    for name, raw in _ONE_ATTRIBUTE.findall(text):
        value: str | None = None
        if raw:
            value = raw[1:-1] if raw[0] in "\"'" else raw
            value = unescape(value) if "&" in value else value
        found.append((name.lower(), value if raw else None))
    return tuple(found)


@lru_cache(maxsize=64)
def _end_of(tag: str) -> re.Pattern[str]:
    return re.compile(rf"</\s*{tag}\s*>", re.IGNORECASE)


def _read_plain_markup(html: str, builder: _TextBuilder) -> bool:
    """Feed ``html`` to ``builder`` tag by tag; ``False`` (with the builder spoilt) as
    soon as the document leaves the plain subset."""
    position, length = 0, len(html)
    while position < length:
        at = html.find("<", position)
        if at < 0:
            at = length
        if at > position:
            text = html[position:at]
            builder.handle_data(unescape(text) if "&" in text else text)
        if at == length:
            return True
        match = _MARKUP.match(html, at)
        if match is None:
            return False
        position = match.end()
        end, start = match["end"], match["start"]
        if end is not None:
            builder.handle_endtag(end.lower())
            continue
        if start is None:  # <!DOCTYPE ...>
            continue
        tag = start.lower()
        if tag in _HANDED_OVER or (tag in _RAW_TEXT and match["closed"]):
            return False
        builder.handle_starttag(tag, list(_attributes(match["attrs"])) if match["attrs"] else [])
        if match["closed"]:
            builder.handle_endtag(tag)
        elif tag in _RAW_TEXT or tag in _ESCAPABLE_RAW_TEXT:
            closing = _end_of(tag).search(html, position)
            if closing is None or "<" in html[position : closing.start()]:
                return False
            if tag in _RAW_TEXT:  # raw text is not unescaped, and hidden anyway
                if closing.start() > position:
                    builder.handle_data(html[position : closing.start()])
                builder.handle_endtag(tag)
                position = closing.end()
    return True


def html_text_by_html_parser(html: str) -> str:
    """The text part as the standard library's ``HTMLParser`` reads ``html``: what
    :func:`html_to_text` falls back to, and what tests compare it with."""
    builder = _TextBuilder()
    builder.feed(html)
    builder.close()
    return builder.text()


def html_to_text(html: str) -> str:
    """A readable plain-text rendering of an HTML email."""
    builder = _TextBuilder()
    if _read_plain_markup(html, builder):
        return builder.text()
    return html_text_by_html_parser(html)
