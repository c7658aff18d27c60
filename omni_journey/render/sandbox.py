"""Jinja's immutable sandbox with a render budget (:mod:`omni_journey.render.budget`).

Jinja's sandbox keeps a template from reaching Python's internals; it does not keep it
from running long or building something huge. This one does, in the process, at about
the cost of a function call per loop, per call and per ``{{ value }}``:

- every ``{% for %}`` iterates through :func:`~omni_journey.render.budget.iterate`
  (the parsed template is rewritten: ``items | omni_budget_iterate(body_chars)``, a
  filter, which a template cannot rebind), which looks at the clock every 32 items and
  counts the body's literal text as written;
- every call a template makes (a macro, a method, ``loop()``) looks at the clock;
- ``*``, ``**``, ``%`` and ``+`` are intercepted: a result over the size limit (a
  string or list times a number, a huge power, a ``%`` with a huge width) is refused
  before it is built, and every result is checked after;
- ``str.format`` and ``format_map`` refuse a huge width or precision before formatting;
  the filters and string methods that pad, repeat or fill (``center``, ``indent``,
  ``format``, ``batch``, ``slice``, ``wordwrap``, ``replace``, ``ljust``, ``rjust``,
  ``zfill``, ``expandtabs``, ``join``) check their size first;
- every ``{{ value }}`` is counted (``finalize``), wherever its output goes, and so is
  every part of ``a ~ b`` (a list that prints huge is refused before it is printed);
- in HTML, a value that starts a URL attribute is checked for its scheme
  (:mod:`omni_journey.render.attributes`);
- ``range`` stays the sandbox's (at most 100,000 items, iterated under the budget);
  ``lipsum`` is gone (nothing needs placeholder text in a sent message).
"""

from __future__ import annotations

import operator
import re
import time
from collections.abc import Callable
from functools import update_wrapper
from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.runtime import Context
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
)
from jinja2.utils import Namespace
from markupsafe import Markup

from omni_journey.render.attributes import guard_url_attributes, safe_url
from omni_journey.render.budget import (
    CONTAINERS,
    charge,
    check_size,
    check_time,
    iterate,
    not_counted,
    weight,
)

__all__ = ["BudgetedSandbox", "too_deep"]

_NUMBERS = re.compile(r"\d+")
_STAR = re.compile(r"%[#0 +\-]*\*|%[#0 +\-]*\d*\.\*")
_PADDING_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})
_SIZED = (str, bytes, list, tuple)


def _largest_number(text: str) -> int:
    """The largest number written in ``text`` (a width or precision of a format)."""
    return max((int(n) if len(n) < 12 else 10**12 for n in _NUMBERS.findall(text)), default=0)


def _check_result(value: Any) -> Any:
    if isinstance(value, _SIZED):
        check_size(len(value))
    return value


def _weighed(value: Any) -> Any:
    """``value``, once it is known to print within the size limit (before it is printed:
    a list holding the same long list ten thousand times is small in memory, not so its
    text)."""
    if isinstance(value, str):
        check_size(len(value))
    elif isinstance(value, CONTAINERS):  # anything else prints about as large as it is
        check_size(weight(value))
    return value


def _check_percent(template: str, args: Any) -> None:
    """``template % args``: refuse a huge literal width or precision, or a ``*`` one."""
    check_size(_largest_number(template))
    _weighed(args)
    if _STAR.search(template):
        values = args if isinstance(args, tuple) else (args,)
        for value in values:
            if isinstance(value, int):
                check_size(abs(value))


def _check_binop(op: str, left: Any, right: Any) -> None:
    if op == "*" and isinstance(left, int) and isinstance(right, int):
        check_size((abs(left).bit_length() + abs(right).bit_length()) // 3)
    elif op == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, _SIZED) and isinstance(times, int):
                check_size(len(seq) * max(times, 0))
    elif op == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
        digits = right * max(abs(left), 2).bit_length() // 3  # about log10
        check_size(digits)
    elif op == "%" and isinstance(left, str):
        _check_percent(left, right)


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "*": operator.mul,
    "**": operator.pow,
    "%": operator.mod,
    "+": operator.add,
}


class _BudgetedFormatter(SandboxedFormatter):
    def format_field(self, value: Any, format_spec: str) -> Any:
        check_size(_largest_number(format_spec))
        return super().format_field(_weighed(value), format_spec)


class _BudgetedEscapeFormatter(SandboxedEscapeFormatter):
    def format_field(self, value: Any, format_spec: str) -> Any:
        check_size(_largest_number(format_spec))
        return super().format_field(_weighed(value), format_spec)


def _sized_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """The filter ``name``, looking at the clock, and with the size of its value (and,
    for the filters that pad, repeat or fill, of its result) checked before it runs."""

    skip = 1 if getattr(original, "jinja_pass_arg", None) is not None else 0

    def checked(*args: Any, **kwargs: Any) -> Any:
        check_time()
        value = args[skip] if len(args) > skip else kwargs.get("value", kwargs.get("s"))
        _weighed(value)
        rest = list(args[skip + 1 :])
        if name in ("center", "indent") and rest:
            width = rest[0]
            lines = str(value).count("\n") + 1 if name == "indent" else 1
            if isinstance(width, int):
                check_size(abs(width) * lines + len(str(value)))
            elif isinstance(width, str):
                check_size(len(width) * lines + len(str(value)))
        elif name == "format":
            _check_percent(str(value), tuple(rest) or kwargs)
        elif name in ("batch", "slice") and rest and isinstance(rest[0], int):
            check_size(abs(rest[0]))
        elif name == "wordwrap":
            wrap = kwargs.get("wrapstring", rest[2] if len(rest) > 2 else None)
            if isinstance(wrap, str):
                check_size(len(str(value)) * (len(wrap) + 1))
        elif name == "replace" and len(rest) >= 2:
            text, old, new = str(value), str(rest[0]), str(rest[1])
            check_size(len(text) + (text.count(old) if old else len(text) + 1) * len(new))
        return _check_result(original(*args, **kwargs))

    return update_wrapper(checked, original)


class _BudgetedNamespace(Namespace):
    """``namespace()``: what a loop keeps across its passes is measured as it is set."""

    def __setitem__(self, name: str, value: Any) -> None:
        check_time()
        check_size(weight(value))
        super().__setitem__(name, value)


_ITERATE = "omni_budget_iterate"
_WEIGHED = "omni_budget_weighed"
_URL = "omni_safe_url"


def _filtered(node: nodes.Node, name: str, *args: nodes.Expr) -> nodes.Filter:
    return nodes.Filter(node, name, list(args), [], None, None, lineno=node.lineno)


def _body_chars(loop: nodes.For) -> int:
    return sum(len(node.data) for child in loop.body for node in child.find_all(nodes.TemplateData))


def too_deep(source: object, name: str | None, filename: str | None) -> TemplateSyntaxError:
    """A template nested deeper than Jinja can parse, as a syntax error on the line that
    opens the most brackets and tags (Jinja itself says nothing but RecursionError)."""
    lines = source.splitlines() if isinstance(source, str) else []
    counts = [sum(line.count(c) for c in "([{") for line in lines]
    line = counts.index(max(counts)) + 1 if counts else 1
    return TemplateSyntaxError(
        "the template nests too deeply (brackets, parentheses or tags inside each other)",
        line,
        name,
        filename,
    )


class BudgetedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with every loop, call, operator and output under the render
    budget running in this context (none outside a render)."""

    intercepted_binops = frozenset(_BINOPS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, finalize=self._written, **kwargs)
        self.globals.pop("lipsum", None)
        self.globals["namespace"] = _BudgetedNamespace
        for name, original in list(self.filters.items()):
            self.filters[name] = _sized_filter(name, original)
        self.filters[_ITERATE] = iterate
        self.filters[_WEIGHED] = _weighed
        self.filters[_URL] = safe_url

    def compile(self, *args: Any, **kwargs: Any) -> Any:
        """Compiling (once per template and renderer) is not the template's time."""
        started = time.monotonic()
        try:
            return super().compile(*args, **kwargs)
        except RecursionError:  # Jinja's parser and code generator recurse per level
            source, name, filename = [*args, None, None, None][:3]
            raise too_deep(source, name, filename) from None
        finally:
            not_counted(time.monotonic() - started)

    # every {% for %} iterates through the filter _ITERATE (items, body_chars), every part
    # of ``a ~ b`` is weighed by _WEIGHED, and in HTML a value that starts a URL attribute
    # goes through _URL (omni_journey.render.attributes). Filters, because Jinja calls a
    # filter directly, where a call goes through the sandbox's checks (several times
    # the cost); a template can name them too, to no effect but the checks.
    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        try:
            return self._guarded(super()._parse(source, name, filename), name)
        except RecursionError:  # thousands of ( or [, hundreds of nested tags
            raise too_deep(source, name, filename) from None

    def _guarded(self, tree: nodes.Template, name: str | None) -> nodes.Template:
        escaped = self.autoescape(name) if callable(self.autoescape) else self.autoescape
        if escaped:
            guard_url_attributes(tree, _URL)
        for concat in tree.find_all(nodes.Concat):
            concat.nodes = [_filtered(part, _WEIGHED) for part in concat.nodes]
        for loop in tree.find_all(nodes.For):
            loop.iter = _filtered(loop.iter, _ITERATE, nodes.Const(_body_chars(loop)))
        return tree

    @staticmethod
    def _written(value: Any) -> Any:
        charge(len(value) if isinstance(value, str) else weight(value))
        return value

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return _check_result(_BINOPS[operator](left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        check_time()
        name = getattr(__obj, "__name__", None)
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, CONTAINERS):
            _weighed(owner)  # its methods go through it in C, past any clock
        elif isinstance(owner, str | bytes) and name is not None:
            if name in _PADDING_METHODS and args and isinstance(args[0], int):
                check_size(args[0])
            elif name == "expandtabs":
                size = args[0] if args and isinstance(args[0], int) else 8
                tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
                check_size(len(owner) + tabs * size)
            elif name == "replace" and len(args) >= 2:
                old, new = args[0], args[1]
                count = owner.count(old) if old else len(owner) + 1
                check_size(len(owner) + count * len(new))
            elif name == "join" and args:
                check_size(len(owner) * weight(args[0]) + weight(args[0]))
        return _check_result(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format`` / ``format_map`` as the sandbox wraps them, with each field's
        width and precision checked against the size limit before it is formatted."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        f_self: str = value.__self__
        formatter: SandboxedFormatter
        if isinstance(f_self, Markup):
            formatter = _BudgetedEscapeFormatter(self, escape=f_self.escape)
        else:
            formatter = _BudgetedFormatter(self)
        is_format_map = value.__name__ == "format_map"

        def checked(*args: Any, **kwargs: Any) -> str:
            wrapped_args, wrapped_kwargs = args, kwargs
            if is_format_map:
                if kwargs or len(args) != 1:
                    return wrapped(*args, **kwargs)  # its own TypeError
                wrapped_args, wrapped_kwargs = (), args[0]
            result = type(f_self)(formatter.vformat(f_self, wrapped_args, wrapped_kwargs))
            return _check_result(result)  # type: ignore[no-any-return]

        return update_wrapper(checked, value)
