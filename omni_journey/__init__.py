"""omni-journey: omnichannel marketing journeys orchestrated on Prefect.

Importing this package has no side effects: it reads no environment, opens no
connection and initialises no SDK.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
