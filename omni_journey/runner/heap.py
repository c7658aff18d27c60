"""The objects a process holds before a pass, kept out of the garbage collector's way.

A pass allocates hundreds of thousands of short-lived objects (rows, states, effects),
so the collector runs full collections during it, and each one walks every object the
process holds, most of them long-lived (modules, SQLAlchemy, pydantic, the project):
about a tenth of a pass's CPU. :func:`frozen_heap` moves what exists when the pass
starts to the collector's permanent generation for the pass, and back after it (so
nothing is kept alive longer than it would have been: garbage among those objects is
collected after the pass, by the next full collection).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["frozen_heap"]


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Freeze the objects that exist now until the block ends (a no-op when someone
    froze objects already: their freeze is theirs to undo)."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
