"""The data subject: everything that names one customer, found from one key.

A customer is the survivor row :func:`~omni_journey.history.find_customer` returns, plus
every customer merged into it (directly or through earlier merges: their rows keep the
old ids), plus every identity any of them owns or owned (the survivor's
``identities`` rows, the ``customer_id`` rows of the merged ids) and the addresses on
their profile rows. Export reads what they name; erasure removes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, or_, select

from omni_journey.history import find_customer
from omni_journey.identity.survivors import merged_into
from omni_journey.store.core import CUSTOMERS, IDENTITIES

__all__ = ["Subject", "load_subject"]

# profile attributes that hold a person's name (searched for in files, never logged)
NAME_ATTRIBUTES = ("first_name", "last_name", "name", "full_name")


@dataclass(frozen=True)
class Subject:
    """One customer and everything that identifies them. ``ids``: the survivor first,
    then the ids merged into it; ``identities``: (kind, value) pairs, sorted."""

    ids: tuple[str, ...]
    identities: tuple[tuple[str, str], ...]
    rows: tuple[Any, ...]  # the ``customers`` rows of ``ids``

    @property
    def survivor(self) -> str:
        return self.ids[0]

    def addresses(self) -> list[tuple[str, str]]:
        """(channel, address) pairs a suppression of this customer could name."""
        found: set[tuple[str, str]] = set()
        channels = {"email": ("email",), "phone": ("sms", "whatsapp"), "push_token": ("push",)}
        for kind, value in self.values():
            found.update((channel, value) for channel in channels.get(kind, ()))
        return sorted(found)

    def values(self) -> list[tuple[str, str]]:
        """Every identifying value: identities, the profile rows' email and phone."""
        found = set(self.identities)
        for row in self.rows:
            found.update(
                (kind, getattr(row, kind)) for kind in ("email", "phone") if getattr(row, kind)
            )
        found.update(("customer_id", c) for c in self.ids)
        return sorted(found)

    def needles(self) -> list[str]:
        """Strings whose presence in a file line means the line is about this customer:
        every identifying value, and the names on their profiles."""
        found = {value for _, value in self.values()}
        for row in self.rows:
            attributes = dict(row.attributes or {})
            found.update(str(attributes[n]) for n in NAME_ATTRIBUTES if attributes.get(n))
        return sorted(v for v in found if len(v) >= 3)


def load_subject(connection: Connection, key: str, default_region: str) -> Subject | None:
    """The customer behind ``key`` (any key ``customers show`` takes), or None."""
    customer = find_customer(connection, key, default_region)
    if customer is None:
        return None
    ids = (str(customer.id), *merged_into(connection, str(customer.id)))
    return subject_of(connection, ids)


def subject_of(connection: Connection, ids: Sequence[str]) -> Subject:
    rows = tuple(connection.execute(select(CUSTOMERS).where(CUSTOMERS.c.id.in_(ids))))
    by_id = {str(r.id): r for r in rows}
    identities = connection.execute(
        select(IDENTITIES.c.kind, IDENTITIES.c.value).where(
            or_(
                IDENTITIES.c.customer_id.in_(ids),
                (IDENTITIES.c.kind == "customer_id") & IDENTITIES.c.value.in_(ids),
            )
        )
    )
    return Subject(
        ids=tuple(ids),
        identities=tuple(sorted({(str(k), str(v)) for k, v in identities})),
        rows=tuple(by_id[c] for c in ids if c in by_id),
    )
