"""Values from data inside HTML attributes: URLs that could run code, and values without
quotes that could add attributes.

Autoescaping makes ``<``, ``>``, ``&`` and quotes harmless, not a URL: a customer whose
``url`` is ``javascript:alert(3)`` would get ``<a href="javascript:alert(3)">``. So in
HTML templates every expression that starts the value of a URL attribute (``href``,
``src``, ``action``, ...) goes through :func:`safe_url` when it renders (the parsed
template is rewritten: ``value | omni_safe_url``): a URL with a scheme other
than http, https, mailto or tel becomes ``about:invalid``, the standard URL that goes
nowhere, and the rest of the message is sent (a link that does nothing, rather than a
customer skipped because of what someone typed into a profile). Relative URLs (``/cart``,
``#top``, ``?q=1``) are kept. A URL whose scheme is written in the template
(``href="https://shop.example.com/p/{{ event.sku }}"``) is left alone: the data cannot
change its scheme.

An attribute value without quotes (``title={{ customer.city }}``) ends at the first
space, so ``Berlin onmouseover=...`` adds an attribute; :func:`unquoted_attributes`
finds them for ``validate``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any, Final

from jinja2 import nodes

__all__ = ["SAFE_SCHEMES", "UNSAFE_URL", "guard_url_attributes", "safe_url", "unquoted_attributes"]

SAFE_SCHEMES: Final = frozenset({"http", "https", "mailto", "tel"})
UNSAFE_URL: Final = "about:invalid"
URL_ATTRIBUTES: Final = (
    "href",
    "src",
    "action",
    "formaction",
    "poster",
    "background",
    "cite",
    "srcset",
    "xlink:href",
)
# text that ends where a URL attribute's value starts: ` href="`, ` src='`, ` href=`
_URL_VALUE_STARTS = re.compile(
    r"[\s\"'](?:" + "|".join(re.escape(a) for a in URL_ATTRIBUTES) + r")\s*=\s*[\"']?$",
    re.IGNORECASE,
)
_IGNORED = re.compile(r"[\x00-\x20\x7f]+")  # browsers drop these from a URL's scheme
_PLAIN_SAFE: Final = ("https://", "http://", "mailto:", "tel:", "/", "#", "?")
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]*):")
# name= followed by a Jinja expression or tag, not by a quote
_UNQUOTED = re.compile(r"(?<=\s)([A-Za-z_:][-\w:.]*)[ \t]*=[ \t]*(?=\{[{%])")


def safe_url(value: Any) -> Any:
    """``value`` if, as a URL, it is relative or its scheme is http, https, mailto or
    tel; :data:`UNSAFE_URL` otherwise (``javascript:``, ``data:``, ``vbscript:``, ...,
    however spaced, cased or written with character references)."""
    text = str(value)
    if text.startswith(_PLAIN_SAFE):  # most links: nothing to undo, the scheme is plain
        return value
    text = _IGNORED.sub("", html.unescape(text))
    scheme = _SCHEME.match(text)
    if scheme is None or scheme.group(1).lower() in SAFE_SCHEMES:
        return value
    return UNSAFE_URL


def guard_url_attributes(tree: nodes.Template, check: str) -> None:
    """Route every expression written at the start of a URL attribute's value, or after
    another such expression, through the filter named ``check`` (:func:`safe_url`)."""
    in_url = False
    for output in tree.find_all(nodes.Output):
        for index, child in enumerate(output.nodes):
            if isinstance(child, nodes.TemplateData):
                in_url = bool(_URL_VALUE_STARTS.search(child.data))
            elif in_url:
                output.nodes[index] = nodes.Filter(
                    child, check, [], [], None, None, lineno=child.lineno
                )


def unquoted_attributes(source: str) -> Iterator[tuple[int, int, str]]:
    """(line, column, attribute) of each attribute in ``source`` whose value is a Jinja
    expression or tag without quotes around it."""
    for match in _UNQUOTED.finditer(source):
        start = match.start()
        if source.rfind("<", 0, start) <= source.rfind(">", 0, start):
            continue  # not inside a tag
        line = source.count("\n", 0, start) + 1
        col = start - source.rfind("\n", 0, start)
        yield line, col, match.group(1)
