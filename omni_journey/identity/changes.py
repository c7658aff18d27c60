"""Point changes to one customer's record, made outside a profile statement: a consent
stated by an opt-out or an unsubscribe link, a push token the provider reports dead,
attributes set by a journey's update step. Profile statements and merges write the same
tables through :mod:`~omni_journey.identity.profiles` and
:mod:`~omni_journey.identity.profile_batch`; nothing outside ``identity`` writes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, select, update

from omni_journey.identity.consent_log import ConsentChangeRow, append_consent_changes
from omni_journey.store.core import CONSENTS, CUSTOMERS, IDENTITIES
from omni_journey.store.ops import insert_ignore

__all__ = ["AttributeChange", "forget_push_token", "record_consent", "update_attributes"]

# (customer id, attributes to set, attribute names to remove)
AttributeChange = tuple[str, Mapping[str, Any], Sequence[str]]


def record_consent(
    connection: Connection,
    customer_id: str,
    channel: str,
    *,
    granted: bool,
    source: str,
    at: datetime,
    only_if_changed: bool = False,
) -> bool:
    """State ``customer_id``'s consent on ``channel`` (``source``: how it was given or
    withdrawn). With ``only_if_changed`` a consent that already says ``granted`` keeps
    its source and time. True when a row was changed or created. A change of the answer
    is appended to the consent history (:mod:`~omni_journey.identity.consent_log`)."""
    where = [CONSENTS.c.customer_id == customer_id, CONSENTS.c.channel == channel]
    previous = connection.execute(select(CONSENTS.c.granted).where(and_(*where))).scalar()
    if only_if_changed:
        where.append(CONSENTS.c.granted.is_not(granted))
    changed = connection.execute(
        update(CONSENTS).where(and_(*where)).values(granted=granted, source=source, updated_at=at)
    ).rowcount
    created = connection.execute(
        insert_ignore(connection, CONSENTS),
        {"customer_id": customer_id, "channel": channel, "granted": granted, "source": source,
         "updated_at": at},
    ).rowcount  # fmt: skip
    if previous is None or bool(previous) is not granted:
        change = ConsentChangeRow(customer_id, channel, previous, granted, source, at)
        append_consent_changes(connection, [change])
    return bool(changed) or bool(created and created > 0)


def forget_push_token(connection: Connection, token: str) -> None:
    """The provider says this push token is dead: no customer owns it any more."""
    connection.execute(
        delete(IDENTITIES).where(
            and_(IDENTITIES.c.kind == "push_token", IDENTITIES.c.value == token)
        )
    )


def update_attributes(
    connection: Connection, changes: Iterable[AttributeChange], now: datetime
) -> None:
    """Apply attribute changes in order (set, then remove), one statement per batch."""
    changes = list(changes)
    if not changes:
        return
    wanted = sorted({customer_id for customer_id, _, _ in changes})
    current = {
        row.id: dict(row.attributes or {})
        for row in connection.execute(
            select(CUSTOMERS.c.id, CUSTOMERS.c.attributes).where(CUSTOMERS.c.id.in_(wanted))
        )
    }
    for customer_id, values, removed in changes:
        attributes = current.setdefault(customer_id, {})
        attributes.update(values)
        for name in removed:
            attributes.pop(name, None)
    connection.execute(
        update(CUSTOMERS)
        .where(CUSTOMERS.c.id == bindparam("b_id"))
        .values(attributes=bindparam("attributes"), updated_at=bindparam("updated_at")),
        [{"b_id": cid, "attributes": attrs, "updated_at": now} for cid, attrs in current.items()],
    )
