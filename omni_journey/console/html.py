"""A tiny HTML builder that escapes by construction, and the console's page frame.

Every ``str`` handed to :func:`el` (as text or as an attribute value) is escaped; only
what the builder itself made is :class:`~markupsafe.Markup` and goes in as it is. There
is no way to say "this string is safe", so a customer value (a name, an attribute, an
event property) can never become markup, whatever it holds.

Why not Jinja2: message templates are the only Jinja environment in omni-journey (the
sandboxed one in ``render``); the console's pages are a few tables and forms, and a
builder with no "safe" switch makes escaping every value a property of the code rather
than of each template.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Final

from markupsafe import Markup, escape

__all__ = ["CSP", "el", "join", "page"]

_NAME: Final = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")  # element and attribute names
# Elements with no content and no closing tag.
_VOID: Final = frozenset({"br", "hr", "input", "meta", "img", "link"})


def _flatten(children: Iterable[object]) -> Iterable[Markup]:
    for child in children:
        if child is None or child is False:
            continue
        if isinstance(child, Markup):
            yield child
        elif isinstance(child, str | int | float):
            yield escape(str(child))
        else:
            yield from _flatten(child)  # type: ignore[arg-type]


def join(*children: object) -> Markup:
    """The children, escaped where they are plain values, as one piece of markup."""
    return Markup("").join(_flatten(children))


def el(tag: str, attrs: Mapping[str, object] | None = None, *children: object) -> Markup:
    """``<tag attrs>children</tag>``. Attribute values are escaped (``None`` or ``False``
    leaves the attribute out, ``True`` writes it bare); children are escaped unless
    they are markup this builder made."""
    if not _NAME.match(tag):
        raise ValueError(f"not an element name: {tag!r}")
    parts = [tag]
    for name, value in (attrs or {}).items():
        if value is None or value is False:
            continue
        key = name.rstrip("_").replace("_", "-")
        if not _NAME.match(key):
            raise ValueError(f"not an attribute name: {key!r}")
        parts.append(key if value is True else f'{key}="{escape(str(value))}"')
    # Safe: names are checked above and every value went through escape().
    opening = Markup("<" + " ".join(parts) + ">")  # noqa: S704
    if tag in _VOID:
        return opening
    return opening + join(*children) + Markup(f"</{tag}>")  # noqa: S704


CSS: Final = """
:root{color-scheme:light;--ink:#1d2433;--mute:#5b6476;--line:#d7dce5;--bg:#f6f7fa;
--accent:#2d5bd1;--ok:#1c7c54;--warn:#a55a00}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--ink);background:var(--bg)}
header{background:#1d2433;color:#fff;padding:.6rem 1rem;display:flex;gap:1rem;
align-items:center;flex-wrap:wrap}
header a{color:#fff;text-decoration:none;font-weight:600}
header form{margin-left:auto;display:flex;gap:.4rem;flex:1 1 16rem;max-width:28rem}
main{max-width:64rem;margin:0 auto;padding:1rem}
h1{font-size:1.35rem;margin:.2rem 0 .8rem;overflow-wrap:anywhere}
h2{font-size:1.08rem;margin:1.4rem 0 .5rem}
a{color:var(--accent)}
input[type=search]{flex:1;min-width:0;padding:.45rem .6rem;border:1px solid var(--line);
border-radius:6px;font:inherit}
button{padding:.45rem .8rem;border:0;border-radius:6px;background:var(--accent);
color:#fff;font:inherit;cursor:pointer}
.card{background:#fff;border:1px solid var(--line);border-radius:10px;padding:.8rem 1rem;
margin:.6rem 0}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);
vertical-align:top;overflow-wrap:break-word}
td:first-child{white-space:nowrap}td.data{min-width:14rem}
td small{display:block;color:var(--mute)}
th{font-size:.8rem;color:var(--mute);font-weight:600;text-transform:uppercase}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem .8rem;margin:0}
dt{color:var(--mute)}dd{margin:0;overflow-wrap:anywhere}
code,pre{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}
pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:0;max-height:12rem;overflow-y:auto}
.tag{display:inline-block;padding:0 .4rem;border-radius:4px;font-size:.8rem;
background:#e8ecf5;color:var(--ink)}
.tag.event{background:#e6f2ff}.tag.consent{background:#efe6ff}.tag.message{background:#e5f5ec}.tag.journey{background:#fff1dc}
.granted{color:var(--ok)}.withdrawn{color:var(--warn)}
.mute{color:var(--mute)}
.pager{display:flex;gap:1rem;margin:.8rem 0}
.diagram-box{overflow-x:auto}
svg.diagram{display:block;width:100%;height:auto;min-width:30rem;max-width:44rem;margin:0 auto}
svg .box{fill:#fff;stroke:#8a94a8;stroke-width:1.2}
svg .box.send{stroke:#2d5bd1}svg .box.wait{stroke:#a55a00}svg .box.end{fill:#eef0f4}
svg .edge{fill:none;stroke:#8a94a8;stroke-width:1.4}
svg .id{font:600 14px system-ui,sans-serif;fill:#1d2433}
svg .kind{font:12px system-ui,sans-serif;fill:#5b6476}
svg .label{font:11.5px system-ui,sans-serif;fill:#1d2433}
svg .count{font:12px system-ui,sans-serif;fill:#2d5bd1;text-decoration:underline}
svg .count.zero{fill:#8a94a8;text-decoration:none}
svg .labelbg{fill:#f6f7fa}
@media (max-width:40rem){main{padding:.6rem}th,td{padding:.3rem}
header form{max-width:none}}
"""

_CSS_HASH: Final = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()

#: Nothing but this page's own inline stylesheet: no script, no image, no font, no
#: frame, no source on the internet; forms post back to the console only.
CSP: Final = (
    f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def page(title: str, *body: object, query: str = "") -> str:
    """A whole console page: the header with the search box, then ``body``."""
    search = el(
        "form",
        {"method": "get", "action": "/console/", "role": "search"},
        el(
            "input",
            {
                "type": "search",
                "name": "q",
                "value": query,
                "placeholder": "customer id, email, phone…",
                "aria-label": "Find a customer",
            },
        ),
        el("button", {"type": "submit"}, "Find"),
    )
    document = join(
        Markup("<!doctype html>"),
        el(
            "html",
            {"lang": "en"},
            el(
                "head",
                None,
                el("meta", {"charset": "utf-8"}),
                el("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}),
                el("meta", {"name": "referrer", "content": "no-referrer"}),
                el("title", None, f"{title} · omni-journey console"),
                el("style", None, Markup(CSS)),  # noqa: S704 (a constant of this module)
            ),
            el(
                "body",
                None,
                el("header", None, el("a", {"href": "/console/"}, "omni-journey console"), search),
                el("main", None, *body),
            ),
        ),
    )
    return str(document)
