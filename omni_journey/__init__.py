"""omni-journey: omnichannel marketing journeys orchestrated on Prefect.

Importing this package has no side effects: it reads no environment, opens no
connection and initialises no SDK. ``track`` and ``identify`` are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omni_journey.api import identify, track

__all__ = ["__version__", "identify", "track"]

__version__ = "0.1.0"

_LAZY = frozenset({"identify", "track"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from omni_journey import api

        return getattr(api, name)
    raise AttributeError(f"module 'omni_journey' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
