"""A profile statement, checked: what one customer record says, ready to apply.

Ingestion checks a record into a :class:`Profile` (no store access); identity applies
it, set-based (:mod:`omni_journey.identity.profile_batch`) or through the identity
graph. Pure data, light to import: the import reader process builds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from omni_journey.identity.keys import IdentityKey

__all__ = ["Profile"]


@dataclass
class Profile:
    customer_id: str | None
    linking: tuple[IdentityKey, ...]
    push: tuple[IdentityKey, ...]
    columns: dict[str, str | None]
    consent: dict[str, bool]
    attributes: dict[str, Any]
    at: datetime
    seeds: list[str] = field(default_factory=list)
    merge: bool = False  # asked to merge customers known by their own ids
