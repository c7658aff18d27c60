"""The render budget: how long one message may take to render and how much it may make.

A template is untrusted code, and a loop or a string that only some customers' data
makes huge must fail that customer's message, not stall the batch or exhaust memory.
Checked in the process, not in a child process per message: a render costs about a
millisecond, a process start a hundred times that.

:meth:`RenderBudget.running` starts the budget of one message (in a context variable, so
threads and nested renders keep their own). While it runs, the sandbox
(:mod:`omni_journey.render.sandbox`) calls in here:

- :func:`check_time` on every call a template makes and every 32 items of every loop
  (the time spent compiling a template, once per renderer, is not counted);
- :func:`charge` for every ``{{ value }}`` written and every loop pass (the literal text
  of its body), so output that piles up anywhere (a ``{% set %}`` block, a macro, a
  namespace) counts, not only what reaches the final string;
- :func:`check_size` before an operation that would build a large value (``'a' * n``,
  ``'{:>n}'.format``, ``|center(n)``), so it is refused before it is built.

Outside :meth:`RenderBudget.running` (compiling a template: Jinja folds constants then)
there is no deadline and sizes are checked against the default limit, so a constant such
as ``'a' * 300000000`` is left for the render to refuse, with its line.

Why cooperative checks, and not a way to stop any code after N seconds: a child process
per message costs a hundred renders; ``SIGALRM`` works only in the main thread (a
dispatch may run in a worker thread) and, like an exception injected into the thread
by a watchdog, cannot stop one long C call such as building ``'a' * 300000000``, which
is also where memory goes. A template can only spend time or memory through loops,
calls, operators, filters and output, and each of those is checked; what one C call
can still do is bounded by the size limit it was checked against. Measured with
``bench/render.py`` against Jinja's plain sandbox (same process, CPU time, best of 15
rounds of 1,000): about 45 µs more per email (+12 % of its render, about 3 % of the
~1.3 ms an email costs in dispatch), 8 µs per SMS, 7 µs per WhatsApp message, 2 µs per
push.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "CONTAINERS",
    "DEFAULT_MAX_CHARS",
    "DEFAULT_TIMEOUT_SECONDS",
    "RenderBudget",
    "RenderTimeoutError",
    "RenderTooLargeError",
    "charge",
    "check_size",
    "check_time",
    "iterate",
    "not_counted",
    "weight",
]

CONTAINERS: Final = (list, tuple, dict, set, frozenset)
DEFAULT_TIMEOUT_SECONDS: Final = 1.0
DEFAULT_MAX_CHARS: Final = 1_000_000
_CHECK_EVERY: Final = 32  # loop items between two looks at the clock


class RenderTimeoutError(RuntimeError):
    """A message took longer to render than its budget (``render-timeout``)."""

    code = "render-timeout"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"rendering took longer than {seconds:g} s")


class RenderTooLargeError(MemoryError):
    """A message would make more than its budget's characters (``render-too-large``)."""

    code = "render-too-large"

    def __init__(self, max_chars: int, what: str = "the output") -> None:
        self.max_chars = max_chars
        super().__init__(f"{what} would be larger than {max_chars:,} characters")


@dataclass
class _Running:
    deadline: float
    seconds: float
    max_chars: int
    written: int = 0
    ticks: int = field(default=0)


_current: ContextVar[_Running | None] = ContextVar("omni_journey_render_budget", default=None)


@dataclass(frozen=True)
class RenderBudget:
    """``timeout_seconds`` of wall-clock time and ``max_chars`` characters of output (all
    the templates of one message together) for one message."""

    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    max_chars: int = DEFAULT_MAX_CHARS

    def __post_init__(self) -> None:
        if not self.timeout_seconds > 0 or self.max_chars < 1:
            raise ValueError("a render budget needs a positive time and size")

    @contextmanager
    def running(self) -> Iterator[None]:
        """The budget of one message, starting now."""
        state = _Running(
            time.monotonic() + self.timeout_seconds, self.timeout_seconds, self.max_chars
        )
        token = _current.set(state)
        try:
            yield
        finally:
            _current.reset(token)


def check_time() -> None:
    """Raise :class:`RenderTimeoutError` once the running budget's time is spent."""
    state = _current.get()
    if state is not None and time.monotonic() > state.deadline:
        raise RenderTimeoutError(state.seconds)


def not_counted(seconds: float) -> None:
    """Give the running budget ``seconds`` back: time spent on the renderer's own work
    (compiling a template the first time it is used), not the template's."""
    state = _current.get()
    if state is not None:
        state.deadline += seconds


def check_size(chars: int) -> None:
    """Refuse to build a value of ``chars`` characters (or items) above the limit."""
    state = _current.get()
    limit = DEFAULT_MAX_CHARS if state is None else state.max_chars
    if chars > limit:
        raise RenderTooLargeError(limit)


def charge(chars: int) -> None:
    """Count ``chars`` characters written by the running message."""
    state = _current.get()
    if state is None:
        check_size(chars)
        return
    state.written += chars
    if state.written > state.max_chars:
        raise RenderTooLargeError(state.max_chars)


def weight(value: Any, limit: int | None = None) -> int:
    """About how many characters ``value`` prints as: its length for a string, the sum
    of its items' for a list, tuple, set or dict (each shared item counted every time it
    appears, as ``str()`` would print it), 8 for anything else. Stops counting past
    ``limit``."""
    if isinstance(value, str | bytes):
        return len(value)
    if not isinstance(value, CONTAINERS):
        return 8
    if limit is None:
        state = _current.get()
        limit = DEFAULT_MAX_CHARS if state is None else state.max_chars
    memo: dict[int, int] = {}

    def walk(item: Any, depth: int) -> int:
        if isinstance(item, str | bytes):
            return len(item)
        if not isinstance(item, CONTAINERS) or depth > 50:
            return 8
        known = memo.get(id(item))
        if known is not None:
            return known
        total = 2
        pieces = item.items() if isinstance(item, dict) else item
        for piece in pieces:
            total += walk(piece, depth + 1) + 2
            if total > limit:
                break
        memo[id(item)] = total
        return total

    return walk(value, 0)


def iterate(iterable: Iterable[Any], body_chars: int) -> Iterator[Any]:
    """``iterable`` as a loop sees it under the running budget: every item charges the
    literal text of the loop's body, every 32 items look at the clock."""
    state = _current.get()
    if state is None:
        yield from iterable
        return
    check_time()
    cost = max(1, body_chars)
    for count, item in enumerate(iterable, 1):
        state.written += cost
        if state.written > state.max_chars:
            raise RenderTooLargeError(state.max_chars, "its loops (each pass counts its text)")
        if not count % _CHECK_EVERY and time.monotonic() > state.deadline:
            raise RenderTimeoutError(state.seconds)
        yield item
