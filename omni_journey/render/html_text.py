"""The plain-text part of an email, derived from its HTML when there is no ``email.txt``.

Paragraphs and headings become blocks, list items ``- item``, links ``text <url>``;
the head, styles, scripts and hidden elements (the preheader) are left out.
"""

from __future__ import annotations

import re
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


class _TextBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._open: list[tuple[str, bool]] = []  # (tag, hides its content)
        self._href: str | None = None
        self._link_text: list[str] = []
        self._link_alt: str = ""
        self._pending = 0  # line breaks owed before the next text

    @property
    def _hidden(self) -> bool:
        return any(hides for _, hides in self._open)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag not in _VOID:
            hides = tag in _SKIP or bool(_HIDDEN.search(attributes.get("style", "")))
            self._open.append((tag, hides))
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
                del self._open[index:]
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
        if not any(tag == "pre" for tag, _ in self._open):
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


def html_to_text(html: str) -> str:
    """A readable plain-text rendering of an HTML email."""
    builder = _TextBuilder()
    builder.feed(html)
    builder.close()
    if builder._href is not None:
        builder._close_link()
    lines = [_SPACES.sub(" ", line).strip() for line in "".join(builder.out).split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
