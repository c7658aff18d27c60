"""The plain-text part of an email, derived from its HTML when there is no ``email.txt``.

Paragraphs and headings become blocks, list items ``- item``, links ``text <url>``;
the head, styles, scripts and hidden elements (the preheader) are left out
(:class:`~omni_journey.render.text_builder.TextBuilder` holds those rules).

Why not just the standard library's ``HTMLParser``: it cost about a third of rendering
an email. Email HTML written from our templates is plain markup, so
:func:`html_to_text` reads it with one regular expression per tag (parsing each
distinct tag once). Anything outside that plain subset (comments, ``<`` in text or
attribute values, raw-text elements holding markup) goes to ``HTMLParser`` instead. Both
drive the same builder, and the subset is chosen so that ``HTMLParser`` would report
exactly the same tags and text for it: the text part is the same whichever reader ran
(tests compare them on the shipped templates).

Why it remembers: the HTML differs for every customer (names, signed links), so no
cache of whole documents ever hits, but nearly all of it is the same from one message
to the next. The plain reader cuts the document at each ``<`` into pieces (a tag and
the text after it) and what a piece does depends only on the piece and on the
builder's state before it (:meth:`TextBuilder.state`). So each (state, piece) is read
once and its effect remembered: the text it adds and the state it leaves. A piece
seen before in the same state costs a dictionary lookup; a new one (a customer's name,
a signed link) is read as it always was. The text is the same either way.
"""

from __future__ import annotations

import re
from functools import lru_cache
from html import unescape
from typing import Final

from omni_journey.render.text_builder import BuilderState, TextBuilder

__all__ = ["html_text_by_html_parser", "html_to_text"]

_TextBuilder = TextBuilder  # the name the reader's tests know it by


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


# What a piece leaves the reader expecting of the next one: nothing, the end tag of a
# raw-text element (its text already read), or that of an escapable raw-text element.
_Expect = tuple[str, str] | None
_RAW: Final = "raw"
_ESCAPABLE: Final = "escapable"


class _Outside(Exception):
    """The document leaves the plain subset: HTMLParser reads it."""


def _read_piece(builder: TextBuilder, piece: str, expect: _Expect) -> _Expect:
    """Feed one piece (what follows a ``<`` up to the next) to ``builder``.

    HTMLParser reads a raw-text (``script``, ``style``) or escapable raw-text (``title``,
    ``textarea``) element up to its end tag: here that end tag must be the very next
    ``<``, or the document is not plain."""
    markup = "<" + piece
    if expect is not None:
        kind, tag = expect
        closing = _end_of(tag).match(markup)
        if closing is None:
            raise _Outside
        if kind == _RAW:  # its text was read with the start tag
            builder.handle_endtag(tag)
            _read_text(builder, markup[closing.end() :])
            return None
    match = _MARKUP.match(markup)
    if match is None:
        raise _Outside
    after = markup[match.end() :]
    end, start = match["end"], match["start"]
    if end is not None:
        builder.handle_endtag(end.lower())
    elif start is not None:  # else <!DOCTYPE ...>
        tag = start.lower()
        if tag in _HANDED_OVER or (tag in _RAW_TEXT and match["closed"]):
            raise _Outside
        builder.handle_starttag(tag, list(_attributes(match["attrs"])) if match["attrs"] else [])
        if match["closed"]:
            builder.handle_endtag(tag)
        elif tag in _RAW_TEXT:  # raw text is not unescaped, and hidden anyway
            if after:
                builder.handle_data(after)
            return (_RAW, tag)
        elif tag in _ESCAPABLE_RAW_TEXT:
            _read_text(builder, after)
            return (_ESCAPABLE, tag)
    _read_text(builder, after)
    return None


def _read_text(builder: TextBuilder, text: str) -> None:
    if text:
        builder.handle_data(unescape(text) if "&" in text else text)


def _read_plain_markup(html: str, builder: TextBuilder) -> bool:
    """Feed ``html`` to ``builder`` piece by piece; ``False`` (with the builder spoilt)
    as soon as the document leaves the plain subset."""
    first, *pieces = html.split("<")
    _read_text(builder, first)
    expect: _Expect = None
    try:
        for piece in pieces:
            expect = _read_piece(builder, piece, expect)
    except _Outside:
        return False
    return expect is None


# --- remembering what each piece does -------------------------------------------------


class _State:
    """One reader state, compared by identity: a cheap dictionary key (the reader's
    memory keeps one object per state value)."""

    __slots__ = ("builder", "expect")

    def __init__(self, builder: BuilderState, expect: _Expect) -> None:
        self.builder = builder
        self.expect = expect


_Effect = tuple[_State, str]  # the state after, the text added
_NOT_PLAIN: Final[_Effect] = (_State(((), None, (), "", 0, False), None), "")
# Pieces with customer data in them are new every time: start afresh past this many
# characters remembered (a few MiB).
_BUDGET: Final = 2_000_000


class _Memory:
    """The states seen (one object each) and the effect of each (state, piece) read."""

    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        self.states: dict[tuple[BuilderState, _Expect], _State] = {}
        self.effects: dict[tuple[_State, str], _Effect] = {}
        self.size = 0  # characters of the pieces and texts in ``effects``

    def state_of(self, builder: TextBuilder, expect: _Expect) -> _State:
        value = (builder.state(), expect)
        state = self.states.get(value)
        if state is None:
            state = self.states.setdefault(value, _State(*value))
        return state

    def effect(self, state: _State, piece: str) -> _Effect:
        """Read ``piece`` in ``state`` (on a builder resumed there) and remember it."""
        builder = TextBuilder.resume(state.builder)
        try:
            expect = _read_piece(builder, piece, state.expect)
        except _Outside:
            effect = _NOT_PLAIN
        else:
            effect = (self.state_of(builder, expect), "".join(builder.out))
        self.effects[(state, piece)] = effect
        self.size += len(piece) + len(effect[1])
        return effect


_MEMORY = _Memory()


def _read_remembering(html: str) -> str | None:
    """The text part by the plain reader, ``None`` if the document is not plain."""
    memory = _MEMORY
    if memory.size > _BUDGET:
        memory.forget()
    first, *pieces = html.split("<")
    builder = TextBuilder()
    _read_text(builder, first)
    state = memory.state_of(builder, None)
    out = ["".join(builder.out)]
    effects = memory.effects
    for piece in pieces:
        effect = effects.get((state, piece)) or memory.effect(state, piece)
        if effect is _NOT_PLAIN:
            return None
        state, added = effect
        out.append(added)
    if state.expect is not None:
        return None
    builder = TextBuilder.resume(state.builder)
    if builder.out:
        builder.out = ["".join(out)]
    return builder.text()


def html_text_by_html_parser(html: str) -> str:
    """The text part as the standard library's ``HTMLParser`` reads ``html``: what
    :func:`html_to_text` falls back to, and what tests compare it with."""
    builder = TextBuilder()
    builder.feed(html)
    builder.close()
    return builder.text()


def html_to_text(html: str) -> str:
    """A readable plain-text rendering of an HTML email."""
    text = _read_remembering(html)
    return text if text is not None else html_text_by_html_parser(html)
