"""What the plain-text part of an email says, fed tag by tag and text by text: the
rules of :func:`omni_journey.render.html_text.html_to_text`, whichever reader feeds them.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["BuilderState", "TextBuilder"]

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
# open elements (tag, hides), link href, link text, link alt, breaks owed, wrote any
BuilderState = tuple[tuple[tuple[str, bool], ...], str | None, tuple[str, ...], str, int, bool]


class TextBuilder(HTMLParser):
    """Collects the text; its ``handle_*`` methods are called by ``HTMLParser.feed`` or
    by the plain-markup reader of :mod:`omni_journey.render.html_text`, which report the
    same tags and text.

    Everything that decides what the next tag or text adds is in :meth:`state` (the
    text written so far only matters by whether there is any), so a reader can resume
    a builder from a state it saw before (:meth:`resume`) and get the same output."""

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

    def state(self) -> BuilderState:
        """What the rest of the document's output depends on (hashable)."""
        return (
            tuple(self._open),
            self._href,
            tuple(self._link_text),
            self._link_alt,
            self._pending,
            bool(self.out),
        )

    @classmethod
    def resume(cls, state: BuilderState) -> TextBuilder:
        """A builder in ``state``, with no text of its own yet (a written-text
        placeholder if the state had written some)."""
        builder = cls()
        opened, builder._href, link_text, builder._link_alt, builder._pending, wrote = state
        builder._open = list(opened)
        builder._hiding = sum(hides for _, hides in opened)
        builder._in_pre = sum(tag == "pre" for tag, _ in opened)
        builder._link_text = list(link_text)
        builder.out = [""] if wrote else []
        return builder

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
