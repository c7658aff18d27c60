"""An erased customer's record: their profile rows, identities, consents and consent
history are deleted (the ``identity`` package writes these tables; the erasure as a
whole is :mod:`omni_journey.privacy`). Nothing is re-pointed here: a customer who is
gone has no identity to resolve to and no consent to send by.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete, or_

from omni_journey.store.core import CONSENT_CHANGES, CONSENTS, CUSTOMERS, IDENTITIES

__all__ = ["forget_customers"]


def forget_customers(connection: Connection, customer_ids: Sequence[str]) -> dict[str, int]:
    """Delete ``customer_ids``' rows (a survivor and the ids merged into it) from
    ``customers``, ``identities`` (theirs, and the ``customer_id`` keys naming them),
    ``consents`` and ``consent_changes``, in the caller's transaction; rows per table."""
    ids = list(customer_ids)
    statements = {
        "identities": delete(IDENTITIES).where(
            or_(
                IDENTITIES.c.customer_id.in_(ids),
                (IDENTITIES.c.kind == "customer_id") & IDENTITIES.c.value.in_(ids),
            )
        ),
        "consents": delete(CONSENTS).where(CONSENTS.c.customer_id.in_(ids)),
        "consent_changes": delete(CONSENT_CHANGES).where(CONSENT_CHANGES.c.customer_id.in_(ids)),
        "customers": delete(CUSTOMERS).where(CUSTOMERS.c.id.in_(ids)),
    }
    return {name: int(connection.execute(s).rowcount or 0) for name, s in statements.items()}
