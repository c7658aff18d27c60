"""Values a template reads that a real customer or event may not have.

Templates render with ``StrictUndefined``: reading ``customer.tier`` for a customer
without a tier, or ``event.old_price`` from an event without one, fails the message
for that customer. A sample render cannot find these (the sample has every value),
so ``validate`` reads every template instead: each ``customer.<attribute>`` and
``event.<property>`` read without a ``| default(...)`` and outside an
``{% if ... is defined %}`` is a warning, with the caret on the variable.

What is always there: a customer's ``id``, ``locale`` and ``timezone`` (every other
field of ``customer`` is an attribute, and attributes are whatever the profiles said);
an event property that some standard event requires (:data:`EVENT_PROPERTIES`, the
table docs/data-formats.md publishes). Everything else may be missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from jinja2 import nodes

__all__ = [
    "ALWAYS_THERE",
    "EVENT_PROPERTIES",
    "OptionalRead",
    "event_table",
    "optional_reads",
    "read_column",
]

# event name -> (required properties, optional properties): what the standard events
# carry. ``validate`` trusts a required one to be there; docs/data-formats.md shows
# this table (a test keeps the two equal).
EVENT_PROPERTIES: Final[Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "product.viewed": (
        ("sku",),
        ("product_name", "category", "price", "currency", "brand", "url", "image_url"),
    ),
    "product.added": (
        ("sku",),
        ("product_name", "category", "price", "currency", "quantity", "url", "image_url"),
    ),
    "cart.viewed": ((), ("products", "total", "currency")),
    "checkout.started": ((), ("products", "total", "currency")),
    "order.completed": (("order_id", "total", "products"), ("currency",)),
    "product.price_dropped": (
        ("sku",),
        ("price", "old_price", "product_name", "category", "url", "source_event_id"),
    ),
    "product.back_in_stock": (
        ("sku",),
        ("price", "product_name", "category", "url", "source_event_id"),
    ),
    "message.replied": (
        ("channel", "text", "inbound_id", "in_reply_to", "matched_by"),
        ("message", "journey", "step", "keyword", "message_type", "text_truncated"),
    ),
}
ALWAYS_THERE: Final = {
    "customer": frozenset({"id", "locale", "timezone"}),
    "event": frozenset(name for required, _ in EVENT_PROPERTIES.values() for name in required),
}
_GUARDING_FILTERS = frozenset({"default", "d"})
_GUARDING_TESTS = frozenset({"defined", "undefined"})


@dataclass(frozen=True)
class OptionalRead:
    """``root.name`` read on template line ``line``; ``occurrence`` counts the reads of
    the same value before it on that line (guarded ones included), to find its column."""

    root: str  # "customer" or "event"
    name: str
    line: int
    occurrence: int

    @property
    def text(self) -> str:
        return f"{self.root}.{self.name}"


def _read(node: nodes.Node) -> tuple[str, str] | None:
    """(root, name) when ``node`` is ``customer.x`` / ``event["x"]``."""
    if isinstance(node, nodes.Getattr):
        target, name = node.node, node.attr
    elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        target, name = node.node, node.arg.value
    else:
        return None
    if (
        isinstance(target, nodes.Name)
        and target.ctx == "load"
        and target.name in ALWAYS_THERE
        and isinstance(name, str)
    ):
        return target.name, name
    return None


def _defined_in(test: nodes.Node) -> set[tuple[str, str]]:
    """Values ``test`` checks with ``is defined`` (anywhere in it)."""
    found: set[tuple[str, str]] = set()
    checks = [test] if isinstance(test, nodes.Test) else []
    for check in [*checks, *test.find_all(nodes.Test)]:
        if check.name in _GUARDING_TESTS and (read := _read(check.node)) is not None:
            found.add(read)
    return found


def _walk(
    node: nodes.Node,
    guarded: frozenset[tuple[str, str]],
    parent: nodes.Node | None,
) -> Iterator[tuple[tuple[str, str], int, bool]]:
    """Every read in source order: (value, line, whether it is safe)."""
    read = _read(node)
    if read is not None:
        safe = (
            read in guarded
            or (
                isinstance(parent, nodes.Filter)
                and parent.name in _GUARDING_FILTERS
                and parent.node is node
            )
            or (isinstance(parent, nodes.Test) and parent.name in _GUARDING_TESTS)
            or (isinstance(parent, nodes.Call) and parent.node is node)  # customer.get(...)
        )
        yield read, node.lineno, safe
        return
    if isinstance(node, nodes.If | nodes.CondExpr):
        inner = guarded | _defined_in(node.test)
        yield from _walk(node.test, guarded, node)
        body = node.body if isinstance(node, nodes.If) else [node.expr1]
        for child in body:
            yield from _walk(child, inner, node)
        rest: list[nodes.Node | None] = (
            [*node.elif_, *node.else_] if isinstance(node, nodes.If) else [node.expr2]
        )
        for other in rest:
            if other is not None:
                yield from _walk(other, guarded, node)
        return
    if isinstance(node, nodes.And):
        yield from _walk(node.left, guarded, node)
        yield from _walk(node.right, guarded | _defined_in(node.left), node)
        return
    for child in node.iter_child_nodes():
        yield from _walk(child, guarded, node)


def optional_reads(tree: nodes.Template) -> list[OptionalRead]:
    """The reads of values a real customer or event may lack, unguarded, once per
    value and line, in source order."""
    seen: dict[tuple[int, str, str], int] = {}
    found: list[OptionalRead] = []
    reported: set[tuple[int, str, str]] = set()
    for (root, name), line, safe in _walk(tree, frozenset(), None):
        key = (line, root, name)
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        if safe or name in ALWAYS_THERE[root] or name.startswith("_") or key in reported:
            continue
        reported.add(key)
        found.append(OptionalRead(root, name, line, occurrence))
    return found


def read_column(text: str, read: OptionalRead, start: int = 0) -> tuple[int, int] | None:
    """Where ``read`` is in ``text`` (a line of its file, searched from ``start``): its
    0-based start and end columns."""
    pattern = re.compile(
        rf"\b{read.root}\s*(?:\.\s*{re.escape(read.name)}\b|\[\s*[\"']{re.escape(read.name)}[\"']\s*\])"
    )
    matches = list(pattern.finditer(text, start))
    if not matches:
        return None
    match = matches[min(read.occurrence, len(matches) - 1)]
    return match.start(), match.end()


def event_table() -> str:
    """The Markdown rows of :data:`EVENT_PROPERTIES` (docs/data-formats.md)."""

    def cell(names: tuple[str, ...]) -> str:
        return ", ".join(f"`{n}`" for n in names) or "none"

    return "\n".join(
        f"| `{event}` | {cell(required)} | {cell(optional)} |"
        for event, (required, optional) in EVENT_PROPERTIES.items()
    )
