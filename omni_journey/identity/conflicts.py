"""When a profile may not merge: two customers known by their own ids. Pure.

A profile merges the customers its linking identities belong to. Customers known only
by an identity (a derived ``auto-...`` id: an anonymous visitor, an address seen in an
event) join the customer the profile speaks for: that is what an identify after a
visit is for. Two customers each known by an id of their own (two CRM records that
share an email, two users on one device) are different people until someone says
otherwise: such a profile is refused as an ``identity-conflict`` unless it asks for
the merge (``merge: true``; a Segment ``alias`` call always does).
"""

from __future__ import annotations

from collections.abc import Iterable

from omni_journey.errors import IngestError
from omni_journey.identity.keys import is_derived_customer_id

__all__ = ["check_no_conflict"]


def check_no_conflict(named: str | None, owners: Iterable[tuple[str, str | None]]) -> None:
    """Raise ``IngestError("identity-conflict")`` when the profile would merge two known
    customers. ``named`` is the customer its ``customer_id`` stands for (after merges),
    ``owners`` the (kind, current owner or None) of each linking identity. The detail
    names identity kinds only, never a value."""
    anchor = None if named is None or is_derived_customer_id(named) else named
    kinds: list[str] = []
    for kind, owner in owners:
        if owner is None or is_derived_customer_id(owner):
            continue
        if anchor is None:
            anchor = owner
        elif owner != anchor and kind not in kinds:
            kinds.append(kind)
    if kinds:
        raise IngestError(
            "identity-conflict",
            f"{' and '.join(kinds)} already belong to another customer known by its own id; "
            'two known customers merge only when asked ("merge": true, or a Segment alias)',
        )
