"""Finding one customer from whatever an operator has in hand: a customer id (an old id
that was merged away finds its survivor), an email address, a phone number, a push
token, an external or anonymous id."""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy import Connection, select

from omni_journey.errors import IngestError
from omni_journey.identity import KINDS, normalize_email, normalize_phone
from omni_journey.identity.survivors import survivor_of
from omni_journey.store.core import IDENTITIES

__all__ = ["find_customer"]


def _candidates(key: str, default_region: str) -> list[tuple[str, str]]:
    """(kind, normalised value) pairs ``key`` may be, most specific first."""
    text = key.strip()
    found: list[tuple[str, str]] = []
    if "@" in text:
        with contextlib.suppress(IngestError):
            found.append(("email", normalize_email(text)))
    if any(c.isdigit() for c in text) and set(text) <= set("+0123456789 ()-./"):
        with contextlib.suppress(IngestError):
            found.append(("phone", normalize_phone(text, default_region)))
    found += [(kind, text) for kind in KINDS if kind not in ("email", "phone")]
    return found


def find_customer(connection: Connection, key: str, default_region: str) -> Any | None:
    """The surviving ``customers`` row behind ``key``, or None when nobody matches.

    Tried in order: the customer id itself, then every identity kind the key can be
    read as (an email normalised as at import, a phone number to E.164 in
    ``default_region``, push tokens and other ids as they are).
    """
    text = key.strip()
    if not text:
        return None
    row = survivor_of(connection, text)
    if row is not None:
        return row
    for kind, value in _candidates(text, default_region):
        owner = connection.execute(
            select(IDENTITIES.c.customer_id).where(
                IDENTITIES.c.kind == kind, IDENTITIES.c.value == value
            )
        ).scalar_one_or_none()
        if owner is not None:
            return survivor_of(connection, str(owner))
    return None
